"""Dynamic client registration (RFC 7591) and management (RFC 7592) through the app: guarded
by an initial access token, every metadata value checked, refusals change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from server_app import ISSUER, Clock, Served, make_settings, serve

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.client_secrets import verify_client_secret
from ostiary.oauth.registration import INITIAL_TOKEN_TYPE, issue_initial_access_token
from ostiary.server.passwords import Argon2PasswordHasher

pytestmark = pytest.mark.anyio

METADATA: dict[str, Any] = {
    "client_name": "Notes web",
    "redirect_uris": ["https://notes.example/callback", "http://127.0.0.1:9000/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile notes:read",
    "id_token_signed_response_alg": "ES256",
    "post_logout_redirect_uris": ["https://notes.example/bye"],
}


def initial_token(served: Served, ttl: int = 600) -> str:
    return issue_initial_access_token(served.runtime.ctx.config, ttl=ttl, now=served.clock())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    served: Served, metadata: dict[str, Any], token: str | None = None
) -> httpx.Response:
    headers = bearer(token) if token is not None else {}
    return await served.http.post("/register", json=metadata, headers=headers)


async def client_count(served: Served) -> int:
    return len(await served.store.clients.list())


async def test_registered_client_gets_its_metadata_secret_and_management_token(
    served: Served,
) -> None:
    response = await register(served, METADATA, initial_token(served))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    for name, value in METADATA.items():
        if name == "grant_types":
            assert sorted(body[name]) == sorted(value)
        elif name != "scope":
            assert body[name] == value, name
    assert set(body["scope"].split()) == set(METADATA["scope"].split())
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret_expires_at"] == 0
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.secret_hash is not None
    assert verify_client_secret(body["client_secret"], stored.secret_hash)
    assert body["registration_access_token"] not in str(stored)  # only its hash is kept
    assert stored.oidc.id_token_signed_response_alg == "ES256"
    # the client works at once: the token endpoint knows its secret
    token = await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.json()["error"] == "invalid_grant"  # authenticated, then the grant refused


async def test_read_update_and_delete_with_the_registration_access_token(
    served: Served,
) -> None:
    body = (await register(served, METADATA, initial_token(served))).json()
    uri = body["registration_client_uri"].removeprefix(ISSUER)
    auth = bearer(body["registration_access_token"])
    read = await served.http.get(uri, headers=auth)
    assert read.status_code == 200
    assert "client_secret" not in read.json() and "registration_access_token" not in read.json()
    changed = {**METADATA, "client_id": body["client_id"], "client_name": "Notes 2"}
    changed["redirect_uris"] = ["https://notes.example/v2/callback"]
    update = await served.http.put(uri, json=changed, headers=auth)
    assert update.status_code == 200, update.text
    assert update.json()["redirect_uris"] == ["https://notes.example/v2/callback"]
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.name == "Notes 2"
    assert verify_client_secret(body["client_secret"], stored.secret_hash or "")  # kept
    deleted = await served.http.delete(uri, headers=auth)
    assert deleted.status_code == 204
    assert await served.store.clients.get(body["client_id"]) is None
    assert (await served.http.get(uri, headers=auth)).status_code == 401


async def test_management_refuses_other_tokens_and_other_clients(served: Served) -> None:
    token = initial_token(served)
    first = (await register(served, METADATA, token)).json()
    second = (await register(served, METADATA, token)).json()
    uri = first["registration_client_uri"].removeprefix(ISSUER)
    for auth in (
        {},
        bearer(second["registration_access_token"]),  # another client's token
        bearer(token),  # the initial access token is not a registration access token
        bearer(first["registration_access_token"] + "x"),
    ):
        response = await served.http.get(uri, headers=auth)
        assert response.status_code == 401, auth
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith("Bearer")
    unknown = await served.http.get(
        "/register/c_unknown", headers=bearer(first["registration_access_token"])
    )
    assert unknown.status_code == 401  # unknown and not yours read the same
    put = await served.http.put(
        uri,
        json={**METADATA, "client_id": second["client_id"]},
        headers=bearer(first["registration_access_token"]),
    )
    assert put.status_code == 400 and put.json()["error"] == "invalid_request"
    wrong_secret = await served.http.put(
        uri,
        json={**METADATA, "client_id": first["client_id"], "client_secret": "guess"},
        headers=bearer(first["registration_access_token"]),
    )
    assert wrong_secret.status_code == 400
    stored = await served.store.clients.get(first["client_id"])
    assert stored is not None and stored.redirect_uris == tuple(METADATA["redirect_uris"])


async def test_registration_needs_a_valid_initial_access_token(served: Served) -> None:
    forged_key = JWK.from_secret(b"k" * 32)
    now = served.clock()
    forged = jwt.encode(
        {"iat": now, "exp": now + 600},
        forged_key,
        alg="HS256",
        headers={"typ": INITIAL_TOKEN_TYPE},
    )
    expired = initial_token(served, ttl=60)
    served.clock.advance(60)
    for token in (None, "not-a-token", forged, expired):
        response = await register(served, METADATA, token)
        assert response.status_code == 401, token
        assert response.json()["error"] == "invalid_token"
    assert await client_count(served) == 0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["/callback"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["com.example.app:/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://app.example/cb"}, "invalid_client_metadata"),
        ({"post_logout_redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"post_logout_redirect_uris": ["https://app.example/#x"]}, "invalid_redirect_uri"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"response_types": ["code id_token"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
        ({"userinfo_signed_response_alg": "none"}, "invalid_client_metadata"),
        ({"subject_type": "secret"}, "invalid_client_metadata"),
        ({"client_name": "x" * 201}, "invalid_client_metadata"),
        ({"client_name": 7}, "invalid_client_metadata"),
        ({"scope": "bad\\scope"}, "invalid_client_metadata"),
        ({"jwks": {"keys": []}}, "invalid_client_metadata"),
        ({"software_statement": "eyJ.eyJ.sig"}, "invalid_software_statement"),
        ({"jwks_uri": "https://app.example/jwks"}, "invalid_client_metadata"),
    ],
)
async def test_hostile_metadata_is_refused_and_nothing_is_registered(
    served: Served, change: dict[str, Any], error: str
) -> None:
    response = await register(served, {**METADATA, **change}, initial_token(served))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert await client_count(served) == 0


async def test_private_keys_in_jwks_are_refused(served: Served) -> None:
    key = JWK.generate("EC", crv="P-256", alg="ES256")
    metadata = {
        **METADATA,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.to_dict(private=True)]},
    }
    response = await register(served, metadata, initial_token(served))
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
    metadata["jwks"] = {"keys": [key.public().to_dict()]}
    assert (await register(served, metadata, initial_token(served))).status_code == 201


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"client_name=x", "application/x-www-form-urlencoded"),
        (b"[" * 100_000, "application/json"),
    ],
    ids=["not-json", "array", "form", "deep"],
)
async def test_malformed_bodies_are_refused(
    served: Served, content: bytes, content_type: str
) -> None:
    response = await served.http.post(
        "/register",
        content=content,
        headers={**bearer(initial_token(served)), "Content-Type": content_type},
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"] in ("invalid_request", "invalid_client_metadata")
    assert await client_count(served) == 0


async def test_public_client_gets_no_secret(served: Served) -> None:
    metadata = {**METADATA, "token_endpoint_auth_method": "none"}
    body = (await register(served, metadata, initial_token(served))).json()
    assert "client_secret" not in body
    stored = await served.store.clients.get(body["client_id"])
    assert stored is not None and stored.is_public and stored.secret_hash is None


async def test_pairwise_needs_one_redirect_host(served: Served) -> None:
    metadata = {
        **METADATA,
        "subject_type": "pairwise",
        "redirect_uris": ["https://a.example/cb", "https://b.example/cb"],
    }
    response = await register(served, metadata, initial_token(served))
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(("mode", "status"), [("open", 201), ("off", 400)])
async def test_open_registration_is_an_explicit_setting(
    tmp_path: Path, clock: Clock, hasher: Argon2PasswordHasher, mode: str, status: int
) -> None:
    settings = make_settings(tmp_path, issuer=ISSUER, registration=mode)
    async with serve(settings, clock=clock, hasher=hasher) as served:
        response = await register(served, METADATA)
        assert response.status_code == status, response.text
        document = (await served.http.get("/.well-known/openid-configuration")).json()
        assert ("registration_endpoint" in document) == (mode == "open")


async def test_discovery_names_the_registration_endpoint(served: Served) -> None:
    document = (await served.http.get("/.well-known/openid-configuration")).json()
    assert document["registration_endpoint"] == ISSUER + "/register"
