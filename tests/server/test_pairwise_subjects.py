"""Pairwise subjects (OpenID Connect Core §8.1) beyond the ID token and UserInfo: a pairwise
client never learns the user id, from any token it holds or any answer about one (JWT access
tokens for any audience, introspection of access and refresh tokens, JWT or opaque), on
SQLite and PostgreSQL. See docs/security.md for the decision."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from server_app import (
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_params,
    query_of,
    sign_in_and_allow,
)

from ostiary.oauth.models import Api, Client, ClientOidc, TokenFormat, User
from ostiary.oauth.subject import subject_for

pytestmark = pytest.mark.anyio

API = "https://notes.example"
SCOPES = frozenset({"openid", "profile", "read"})


def payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


async def tokens(
    served: Served,
    user: User,
    *,
    subject_type: str,
    token_format: TokenFormat = "jwt",  # noqa: S107 - a format, not a secret
    resource: str | None = None,
) -> tuple[Client, str, dict[str, Any]]:
    client, secret = await served.add_client(
        scopes=SCOPES, oidc=ClientOidc(subject_type=subject_type), token_format=token_format
    )
    assert secret is not None
    pkce = Pkce.new()
    extra = {"resource": resource} if resource else {}
    params = authorize_params(client, pkce, scope="openid read", **extra)
    async with served.browser() as browser:
        final = await sign_in_and_allow(browser, "/authorize?" + urlencode(params), user.username)
    data = {
        "grant_type": "authorization_code",
        "code": query_of(final.headers["location"])["code"][0],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    if resource:
        data["resource"] = resource
    response = await served.http.post("/token", data=data, auth=(client.client_id, secret))
    assert response.status_code == 200, response.text
    return client, secret, response.json()


async def introspect(served: Served, token: str, client: Client, secret: str) -> dict[str, Any]:
    response = await served.http.post(
        "/introspect", data={"token": token}, auth=(client.client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["active"] is True
    return body


async def seen_by_the_client(served: Served, body: dict[str, Any], secret: str) -> list[Any]:
    """Everything the client can read: the token response, the JWTs in it, UserInfo."""
    seen: list[Any] = [body, payload(body["id_token"])]
    if body["access_token"].count(".") == 2:
        seen.append(payload(body["access_token"]))
    info = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    seen.append(info.json())
    return seen


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
@pytest.mark.parametrize("resource", [None, API], ids=["own-audience", "registered-api"])
async def test_pairwise_client_never_learns_the_user_id(
    served: Served, token_format: TokenFormat, resource: str | None
) -> None:
    await served.store.apis.add(Api(identifier=API, scopes=frozenset({"read"})))
    user = await served.add_user()
    client, secret, body = await tokens(
        served, user, subject_type="pairwise", token_format=token_format, resource=resource
    )
    pairwise = subject_for(client, user.user_id, served.runtime.ctx.config)
    assert pairwise != user.user_id
    if token_format == "jwt":
        claims = payload(body["access_token"])
        assert claims["sub"] == pairwise
        assert claims["aud"] == (resource or served.runtime.ctx.config.audience)
    # introspection, by the client itself and by a resource server (another client)
    api_client, api_secret = await served.add_client(scopes=frozenset({"read"}))
    assert api_secret is not None
    answers = [
        await introspect(served, body["access_token"], client, secret),
        await introspect(served, body["access_token"], api_client, api_secret),
        await introspect(served, body["refresh_token"], client, secret),
    ]
    assert {answer["sub"] for answer in answers} == {pairwise}
    seen = [*answers, *await seen_by_the_client(served, body, secret)]
    assert user.user_id not in json.dumps(seen)


async def test_the_user_id_stays_the_subject_of_a_public_subject_client(served: Served) -> None:
    user = await served.add_user()
    client, secret, body = await tokens(served, user, subject_type="public")
    assert payload(body["access_token"])["sub"] == user.user_id
    assert payload(body["id_token"])["sub"] == user.user_id
    described = await introspect(served, body["refresh_token"], client, secret)
    assert described["sub"] == user.user_id


async def test_pairwise_subject_survives_a_refresh(served: Served) -> None:
    user = await served.add_user()
    client, secret, body = await tokens(served, user, subject_type="pairwise")
    pairwise = subject_for(client, user.user_id, served.runtime.ctx.config)
    refreshed = await served.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        auth=(client.client_id, secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert payload(new["access_token"])["sub"] == pairwise
    assert payload(new["id_token"])["sub"] == pairwise
    assert user.user_id not in json.dumps(await seen_by_the_client(served, new, secret))


async def test_a_client_credentials_token_keeps_the_client_as_subject(served: Served) -> None:
    """Pairwise subjects are for users; a client's own token names the client."""
    client, secret = await served.add_client(
        scopes=SCOPES, oidc=ClientOidc(subject_type="pairwise"), token_format="opaque"
    )
    assert secret is not None
    response = await served.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client.client_id, secret),
    )
    assert response.status_code == 200, response.text
    described = await introspect(served, response.json()["access_token"], client, secret)
    assert described["sub"] == client.client_id
