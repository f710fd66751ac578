"""A stand-in issuer for the `ostiary.protect` unit tests: metadata and JWKS served through
`httpx.MockTransport`, keys it signs with, a settable clock, and a count of what was asked.

The end-to-end tests (tests/e2e/test_protect_e2e.py) use a real `ostiary serve` instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx

from ostiary.jose import jws, jwt
from ostiary.jose.jwk import JWK

ISSUER = "https://auth.example"
AUDIENCE = "https://notes.example"
NOW = 1_800_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeIssuer:
    """Serves `/.well-known/oauth-authorization-server`, `/jwks.json` and `/introspect`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.key = JWK.generate("EC", crv="P-256", alg="ES256", kid="k1")
        self.published: list[JWK] = [self.key]
        self.requests: Counter[str] = Counter()
        self.down = False
        self.jwks_headers: dict[str, str] = {"Cache-Control": "public, max-age=300"}
        self.metadata_extra: dict[str, Any] = {}
        self.introspection: dict[str, dict[str, Any]] = {}  # token -> answer
        self.introspection_auth: list[str | None] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests[path] += 1
        if self.down:
            return httpx.Response(503)
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": ISSUER + "/jwks.json",
                    "introspection_endpoint": ISSUER + "/introspect",
                    **self.metadata_extra,
                },
            )
        if path == "/jwks.json":
            keys = {"keys": [key.public().to_dict() for key in self.published]}
            return httpx.Response(200, content=json.dumps(keys), headers=self.jwks_headers)
        if path == "/introspect" and request.method == "POST":
            self.introspection_auth.append(request.headers.get("authorization"))
            form = dict(httpx.QueryParams(request.content.decode()))
            answer = self.introspection.get(form.get("token", ""), {"active": False})
            return httpx.Response(200, json=answer)
        return httpx.Response(404)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock.now)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "client_id": "app-1",
            "iat": now,
            "exp": now + 300,
            "jti": f"jti-{now}",
            "scope": "notes:read",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: JWK | None = None,
        *,
        headers: Mapping[str, Any] | None = None,
        alg: str | None = None,
        **overrides: Any,
    ) -> str:
        key = key or self.key
        claims = self.claims(**overrides)
        if not all(isinstance(claims.get(n, 0), int) for n in ("exp", "nbf", "iat")):
            # a claim jwt.encode would refuse to write: sign the raw JSON
            header = {"alg": alg or key.alg, "typ": "at+jwt", "kid": key.kid, **(headers or {})}
            return jws.sign(json.dumps(claims), key, alg=header["alg"], headers=header)
        return jwt.encode(
            self.claims(**overrides),
            key,
            alg=alg or key.alg or "ES256",
            headers={"typ": "at+jwt", "kid": key.kid, **(headers or {})},
        )
