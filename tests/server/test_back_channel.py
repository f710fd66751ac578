"""Token, revocation, introspection, metadata and JWKS through the app: spec-shaped JSON,
`Cache-Control: no-store`, and bad requests refused before they change anything."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from server_app import (
    ISSUER,
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_url,
    query_of,
    sign_in_and_allow,
)
from starlette.routing import Route

pytestmark = pytest.mark.anyio


async def client_credentials(served: Served, client_id: str, secret: str) -> httpx.Response:
    return await served.http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert "Traceback" not in response.text


async def test_client_credentials_through_http(served: Served) -> None:
    client, secret = await served.add_client()
    assert secret is not None
    response = await client_credentials(served, client.client_id, secret)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600


async def test_wrong_secret_is_401_with_a_challenge(served: Served) -> None:
    client, _ = await served.add_client()
    response = await client_credentials(served, client.client_id, "not-the-secret")
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        (None, b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("application/x-www-form-urlencoded; charset=latin-1", b"grant_type=client_credentials"),
    ],
)
async def test_token_request_that_is_not_a_form_is_invalid_request(
    served: Served, content_type: str | None, body: bytes
) -> None:
    client, secret = await served.add_client()
    headers = {"content-type": content_type} if content_type else {}
    response = await served.http.post(
        "/token", content=body, headers=headers, auth=(client.client_id, secret or "")
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [b"grant_type=%ff%fe", b"grant_type=\xff", b"grant_type=client_credentials&" * 300],
    ids=["bad-percent-utf8", "raw-bytes", "too-many-fields"],
)
async def test_undecodable_form_is_invalid_request(served: Served, body: bytes) -> None:
    client, secret = await served.add_client()
    response = await served.http.post(
        "/token",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_authorization_header_is_refused(served: Served) -> None:
    client, secret = await served.add_client()
    good = httpx.BasicAuth(client.client_id, secret or "")._auth_header
    response = await served.http.post(
        "/token",
        content=b"grant_type=client_credentials",
        headers=[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", good),
            ("authorization", good),
        ],
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_parameter_is_refused(served: Served) -> None:
    client, secret = await served.add_client()
    response = await served.http.post(
        "/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_oversized_body_is_413_before_anything_reads_it(served: Served) -> None:
    client, secret = await served.add_client()
    before = len(await served.store.audit.tail(1000))
    big = b"grant_type=client_credentials&scope=" + b"a" * (64 * 1024)
    response = await served.http.post(
        "/token",
        content=big,
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert_oauth_error(response, 413, "invalid_request")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
        for _ in range(100):
            yield b"a" * 1024

    chunked = await served.http.post(
        "/token",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client.client_id, secret or ""),
    )
    assert_oauth_error(chunked, 413, "invalid_request")
    assert len(await served.store.audit.tail(1000)) == before


async def test_every_route_refuses_an_oversized_chunked_body(served: Served) -> None:
    """BodyLimit wraps the whole app: no route, present or future, reads past the limit."""
    routes = [
        (method, route.path)
        for route in served.app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]
    assert ("POST", "/token") in routes and ("POST", "/login") in routes

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length
        for _ in range(100):
            yield b"a" * 1024

    for method, path in routes:
        response = await served.http.request(
            method,
            path,
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413, (method, path, response.status_code)


async def test_oversized_login_post_gets_a_413_page(served: Served) -> None:
    response = await served.http.post("/login", data={"username": "a" * 70_000})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")


async def test_bad_content_length_is_400(served: Served) -> None:
    response = await served.http.post("/token", content=b"x", headers={"content-length": "abc"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/token", 405),
        ("PUT", "/revoke", 405),
        ("DELETE", "/introspect", 405),
        ("POST", "/jwks.json", 405),
        ("GET", "/nothing-here", 404),
        ("GET", "/static/nothing.css", 404),
        ("GET", "/consent", 405),
    ],
)
async def test_wrong_method_or_path_is_json_not_a_crash(
    served: Served, method: str, path: str, status: int
) -> None:
    response = await served.http.request(method, path)
    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"
    if path != "/consent":
        assert response.json()["error"] == "invalid_request"


async def test_introspection_and_revocation_through_http(served: Served) -> None:
    client, secret = await served.add_client()
    auth = (client.client_id, secret or "")
    token = (await client_credentials(served, client.client_id, secret or "")).json()
    access = token["access_token"]
    active = await served.http.post("/introspect", data={"token": access}, auth=auth)
    assert active.status_code == 200 and active.json()["active"] is True
    assert active.headers["cache-control"] == "no-store"
    revoked = await served.http.post("/revoke", data={"token": access}, auth=auth)
    assert revoked.status_code == 200
    inactive = await served.http.post("/introspect", data={"token": access}, auth=auth)
    assert inactive.json() == {"active": False}


async def test_replayed_code_is_refused_and_revokes_what_it_issued(served: Served) -> None:
    client, secret = await served.add_client()
    user = await served.add_user()
    pkce = Pkce.new()
    final = await sign_in_and_allow(served.http, authorize_url(client, pkce), user.username)
    form = {
        "grant_type": "authorization_code",
        "code": query_of(final.headers["location"])["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    auth = (client.client_id, secret or "")
    first = await served.http.post("/token", data=form, auth=auth)
    assert first.status_code == 200
    replay = await served.http.post("/token", data=form, auth=auth)
    assert_oauth_error(replay, 400, "invalid_grant")
    refresh = await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
        auth=auth,
    )
    assert_oauth_error(refresh, 400, "invalid_grant")


async def test_refresh_rotates_and_reuse_revokes_the_family(served: Served) -> None:
    client, secret = await served.add_client()
    user = await served.add_user()
    pkce = Pkce.new()
    auth = (client.client_id, secret or "")
    final = await sign_in_and_allow(served.http, authorize_url(client, pkce), user.username)
    tokens = (
        await served.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query_of(final.headers["location"])["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": pkce.verifier,
            },
            auth=auth,
        )
    ).json()
    old = tokens["refresh_token"]
    rotated = await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": old}, auth=auth
    )
    assert rotated.status_code == 200
    new = rotated.json()["refresh_token"]
    assert new != old
    reuse = await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": old}, auth=auth
    )
    assert_oauth_error(reuse, 400, "invalid_grant")
    family_gone = await served.http.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": new}, auth=auth
    )
    assert_oauth_error(family_gone, 400, "invalid_grant")


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
async def test_metadata_is_discoverable_at_both_well_known_paths(served: Served, path: str) -> None:
    response = await served.http.get(path)
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == ISSUER
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert response.headers["cache-control"] == "public, max-age=300"
    for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"]:
        endpoint = document[name].removeprefix(ISSUER)
        method = "GET" if name != "token_endpoint" else "POST"
        answer = await served.http.request(method, endpoint)
        assert answer.status_code != 404, name


async def test_jwks_lists_public_keys_only(served: Served) -> None:
    response = await served.http.get("/jwks.json")
    keys = response.json()["keys"]
    assert sorted((key["kty"], key["alg"]) for key in keys) == [
        ("EC", "ES256"),
        ("OKP", "EdDSA"),
        ("RSA", "RS256"),
    ]
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_stylesheet_is_served_and_cacheable(served: Served) -> None:
    response = await served.http.get("/static/ostiary.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("page", [False, True])
async def test_server_error_keeps_the_security_headers_and_hides_the_traceback(
    served: Served, tmp_path: Path, page: bool
) -> None:
    # Starlette answers an unhandled exception from its outermost middleware, outside
    # `SecurityHeaders`: without care a 500 page could be framed or sniffed.
    client, secret = await served.add_client()
    with contextlib.closing(sqlite3.connect(tmp_path / "ostiary.db")) as db:
        db.execute("DROP TABLE clients")  # the database fails under the running app
        db.commit()
    transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        if page:
            response = await http.get(authorize_url(client, Pkce.new()))
        else:
            response = await http.post(
                "/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, secret or ""),
            )
    assert response.status_code == 500
    assert "Traceback" not in response.text and "clients" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
