"""CORS over real HTTP against a running `ostiary serve`: discovery and JWKS readable from any
origin without credentials; the token, UserInfo and revocation endpoints (preflight
included) only for the exact origin of a registered client's redirect URI; hostile origins
(`null`, another port, another scheme, another host) get no CORS header; introspection none.

The seeded clients register the callback server's loopback redirect URI, so its origin is
the registered one here. docs/server.md, "CORS", says what is allowed and why."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from e2e_server import CallbackServer, OstiaryServer

CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
)


def registered_origin(callback: CallbackServer) -> str:
    parts = urlsplit(callback.redirect_uri)
    return f"{parts.scheme}://{parts.netloc}"


def hostile_origins(callback: CallbackServer) -> list[str]:
    parts = urlsplit(callback.redirect_uri)
    assert parts.port is not None
    return [
        "null",  # a sandboxed frame, a file, a data: URL
        f"http://{parts.hostname}:{parts.port + 1}",  # another port
        f"https://{parts.hostname}:{parts.port}",  # another scheme
        f"http://localhost:{parts.port}",  # another host naming the same machine
        f"http://{parts.hostname}:{parts.port}/callback",  # not an origin at all
        f"http://{parts.hostname}:{parts.port}.evil.example",
    ]


def cors_of(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


@pytest.mark.parametrize(
    "path",
    ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"],
)
def test_discovery_and_jwks_are_readable_from_any_origin(
    server: OstiaryServer, callback: CallbackServer, path: str
) -> None:
    for origin in [registered_origin(callback), "https://anyone.example", "null"]:
        response = httpx.get(server.base_url + path, headers={"Origin": origin}, timeout=10)
        assert response.status_code == 200
        assert cors_of(response) == {"access-control-allow-origin": "*"}  # no credentials
    preflight = httpx.request(
        "OPTIONS",
        server.base_url + path,
        headers={"Origin": "https://anyone.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers


@pytest.mark.parametrize(
    ("path", "method"),
    [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET"), ("/userinfo", "POST")],
)
def test_preflight_answers_the_registered_origin_only(
    server: OstiaryServer, callback: CallbackServer, path: str, method: str
) -> None:
    origin = registered_origin(callback)
    request_headers = {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, dpop",
    }
    allowed = httpx.request(
        "OPTIONS", server.base_url + path, headers={"Origin": origin, **request_headers}, timeout=10
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == origin
    assert method in allowed.headers["access-control-allow-methods"]
    assert {"authorization", "content-type", "dpop"} <= {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert "origin" in allowed.headers["vary"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    for hostile in hostile_origins(callback):
        refused = httpx.request(
            "OPTIONS",
            server.base_url + path,
            headers={"Origin": hostile, **request_headers},
            timeout=10,
        )
        assert refused.status_code == 204, hostile
        assert cors_of(refused) == {}, hostile
    wrong_method = httpx.request(
        "OPTIONS",
        server.base_url + path,
        headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"},
        timeout=10,
    )
    assert cors_of(wrong_method) == {}


def test_token_answers_are_readable_by_the_registered_origin_only(
    server: OstiaryServer, callback: CallbackServer
) -> None:
    origin = registered_origin(callback)
    form = {"grant_type": "refresh_token", "refresh_token": "not-a-token", "client_id": "nobody"}
    answer = httpx.post(server.endpoint("token"), data=form, headers={"Origin": origin}, timeout=10)
    assert answer.status_code in (400, 401)  # an error the app's page can read
    assert answer.headers["access-control-allow-origin"] == origin
    assert "dpop-nonce" in answer.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in answer.headers
    for hostile in hostile_origins(callback):
        refused = httpx.post(
            server.endpoint("token"), data=form, headers={"Origin": hostile}, timeout=10
        )
        assert refused.status_code == answer.status_code  # the same answer, unreadable
        assert cors_of(refused) == {}, hostile
    plain = httpx.post(server.endpoint("token"), data=form, timeout=10)
    assert cors_of(plain) == {} and "vary" not in plain.headers


def test_userinfo_and_revocation_errors_are_readable_by_the_registered_origin(
    server: OstiaryServer, callback: CallbackServer
) -> None:
    origin = registered_origin(callback)
    userinfo = httpx.get(
        server.base_url + "/userinfo",
        headers={"Origin": origin, "Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert userinfo.status_code == 401
    assert userinfo.headers["access-control-allow-origin"] == origin
    # the page must be able to read the bearer challenge (RFC 6750 §3)
    assert "www-authenticate" in userinfo.headers["access-control-expose-headers"].lower()
    revoke = httpx.post(
        server.endpoint("revocation"),
        data={"token": "not-a-token", "client_id": "nobody"},
        headers={"Origin": origin},
        timeout=10,
    )
    assert revoke.headers["access-control-allow-origin"] == origin
    refused = httpx.get(
        server.base_url + "/userinfo",
        headers={"Origin": hostile_origins(callback)[0], "Authorization": "Bearer x"},
        timeout=10,
    )
    assert cors_of(refused) == {}


def test_introspection_answers_no_cors(server: OstiaryServer, callback: CallbackServer) -> None:
    origin = registered_origin(callback)
    preflight = httpx.request(
        "OPTIONS",
        server.endpoint("introspection"),
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 405 and cors_of(preflight) == {}
    answer = httpx.post(
        server.endpoint("introspection"),
        data={"token": "x"},
        headers={"Origin": origin},
        timeout=10,
    )
    assert cors_of(answer) == {}
