"""HSTS (RFC 6797) only when the issuer is https: a local http server must stay reachable."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_app import Clock, fast_hasher, make_settings, serve

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [("https://auth.example", "max-age=31536000"), ("http://127.0.0.1:8000", None)],
    ids=["https-issuer", "local-http-issuer"],
)
async def test_hsts_follows_the_issuer_scheme(
    tmp_path: Path, issuer: str, expected: str | None
) -> None:
    settings = make_settings(tmp_path, issuer=issuer)
    async with serve(settings, clock=Clock(), hasher=fast_hasher()) as served:
        for path in ("/.well-known/oauth-authorization-server", "/jwks.json", "/nowhere"):
            response = await served.http.get(path)
            assert response.headers.get("strict-transport-security") == expected, path
