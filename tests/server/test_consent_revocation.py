"""Revoking consent while the server runs: the operator's `ostiary users revoke-consent` (a
separate process on the same database) ends what the client holds for the user, and the
user's next authorization request at that client shows the consent page again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from server_app import (
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_url,
    form_of,
    query_of,
    sign_in_and_allow,
    submit,
)

pytestmark = pytest.mark.anyio

SCRIPT = Path(sys.executable).parent / ("ostiary.exe" if os.name == "nt" else "ostiary")


async def redeem(
    served: Served, client_id: str, secret: str, code: str, verifier: str
) -> httpx.Response:
    return await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )


async def revoke_consent(backend: str, folder: Path, username: str, client_id: str) -> str:
    """Run `ostiary users revoke-consent` as an operator would, on the server's database."""
    if not SCRIPT.exists():
        pytest.skip(f"the ostiary console script is not installed ({SCRIPT})")
    env = {**os.environ, "OSTIARY_DATABASE_URL": backend}
    args = ["users", "revoke-consent", "--username", username, "--client-id", client_id]
    result = await anyio.run_process([str(SCRIPT), *args], cwd=folder, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


async def test_revoked_consent_is_asked_again_and_ends_the_clients_tokens(
    served: Served, backend: str, tmp_path: Path
) -> None:
    client, secret = await served.add_client()
    assert secret is not None
    user = await served.add_user()
    pkce = Pkce.new()
    allowed = await sign_in_and_allow(served.http, authorize_url(client, pkce), user.username)
    code = query_of(allowed.headers["location"])["code"][0]
    issued = await redeem(served, client.client_id, secret, code, pkce.verifier)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    # remembered: the next request comes straight back with a code, not yet redeemed
    pending = Pkce.new()
    remembered = await served.http.get(authorize_url(client, pending))
    assert remembered.status_code == 302
    pending_code = query_of(remembered.headers["location"])["code"][0]

    said = await revoke_consent(backend, tmp_path, user.username, client.client_id)

    # the refresh token and the access token recorded with it
    assert said == (
        f"revoked the consent of {user.username} at client {client.client_id}; 2 tokens revoked\n"
    )
    # still signed in, but asked again: the consent page, not a redirect with a code
    again = await served.http.get(authorize_url(client, Pkce.new()))
    assert again.status_code == 200, again.headers
    assert form_of(again).buttons == [("decision", "deny"), ("decision", "allow")]
    assert "password" not in form_of(again).inputs
    silent = await served.http.get(authorize_url(client, Pkce.new(), prompt="none"))
    assert query_of(silent.headers["location"])["error"] == ["consent_required"]

    refresh = await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, secret),
    )
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")
    introspected = await served.http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=(client.client_id, secret)
    )
    assert introspected.json() == {"active": False}
    late = await redeem(served, client.client_id, secret, pending_code, pending.verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")

    # allowing again starts a new grant that works
    fresh = Pkce.new()
    page = await served.http.get(authorize_url(client, fresh))
    allowed_again = await submit(served.http, page, decision="allow")
    assert allowed_again.status_code == 303, allowed_again.text
    new_code = query_of(allowed_again.headers["location"])["code"][0]
    reissued = await redeem(served, client.client_id, secret, new_code, fresh.verifier)
    assert reissued.status_code == 200, reissued.text
