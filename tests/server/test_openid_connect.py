"""OpenID Connect through the app: discovery, ID tokens from the code flow, UserInfo with its
RFC 6750 errors, on the real SqlStore (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from server_app import (
    ISSUER,
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    Served,
    authorize_params,
    form_of,
    query_of,
    sign_in_and_allow,
    submit,
)

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.oauth.models import Client, ClientOidc, User

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "read"})
CLAIMS = {
    "name": "Alice Liddell",
    "given_name": "Alice",
    "email": "alice@example.com",
    "email_verified": True,
    "address": {"locality": "Oxford", "country": "GB"},
    "phone_number": "+44 1865 000000",
}


async def signed_in_tokens(
    served: Served,
    *,
    scope: str = "openid profile email",
    token_headers: dict[str, str] | None = None,
    browser: httpx.AsyncClient | None = None,
    **oidc: Any,
) -> tuple[Client, str | None, User, dict[str, Any], str]:
    """A client and a user with claims; run the code flow; return the token response."""
    client, secret = await served.add_client(scopes=SCOPES, oidc=ClientOidc(**oidc))
    user = await served.add_user()
    user = dataclasses.replace(user, claims=CLAIMS)
    assert await served.store.users.update(user)
    pkce = Pkce.new()
    params = authorize_params(client, pkce, scope=scope, nonce="n-0S6_WzA2Mj")
    final = await sign_in_and_allow(
        browser or served.http, "/authorize?" + urlencode(params), user.username
    )
    code = query_of(final.headers["location"])["code"][0]
    response = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret or ""),
        headers=token_headers,
    )
    assert response.status_code == 200, response.text
    return client, secret, user, response.json(), params["nonce"]


async def test_discovery_document_is_openid_and_every_endpoint_answers(served: Served) -> None:
    response = await served.http.get("/.well-known/openid-configuration")
    document = response.json()
    assert document["issuer"] == ISSUER
    # OpenID Connect Discovery 1.0 §3: REQUIRED members
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert name in document, name
    assert "RS256" in document["id_token_signing_alg_values_supported"]  # Core §15.1
    assert document["request_uri_parameter_supported"] is False  # its default would be true
    published = {key["alg"] for key in (await served.http.get("/jwks.json")).json()["keys"]}
    assert set(document["id_token_signing_alg_values_supported"]) <= published
    assert (
        await served.http.get(document["userinfo_endpoint"].removeprefix(ISSUER))
    ).status_code == 401
    rfc8414 = (await served.http.get("/.well-known/oauth-authorization-server")).json()
    assert "userinfo_endpoint" not in rfc8414
    assert {k: v for k, v in document.items() if k in rfc8414} == rfc8414


async def test_code_flow_with_openid_returns_an_id_token_the_jwks_verifies(
    served: Served,
) -> None:
    client, _, user, body, nonce = await signed_in_tokens(served)
    jwks = (await served.http.get("/jwks.json")).json()
    assert jwt.unverified_header(body["id_token"])["alg"] == "RS256"  # the default
    claims = jwt.decode(
        body["id_token"],
        jwks,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=client.client_id,
        now=served.clock(),
    )
    assert (claims["sub"], claims["nonce"]) == (user.user_id, nonce)
    assert claims["auth_time"] == served.clock()
    assert "email" not in claims  # an access token was issued: claims go to UserInfo


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_userinfo_answers_the_claims_of_the_granted_scopes(
    served: Served, method: str
) -> None:
    _, _, user, body, _ = await signed_in_tokens(served, scope="openid email")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    response = await served.http.request(method, "/userinfo", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "sub": user.user_id,
        "email": "alice@example.com",
        "email_verified": True,
    }


async def test_userinfo_takes_the_token_in_a_form_body(served: Served) -> None:
    _, _, user, body, _ = await signed_in_tokens(served, scope="openid profile address phone")
    response = await served.http.post("/userinfo", data={"access_token": body["access_token"]})
    assert response.status_code == 200, response.text
    claims = response.json()
    assert claims["sub"] == user.user_id
    assert claims["preferred_username"] == user.username  # the username stands in
    assert claims["address"] == CLAIMS["address"]
    assert claims["phone_number"] == CLAIMS["phone_number"]
    assert "email" not in claims


async def test_signed_userinfo_when_the_client_registered_an_alg(served: Served) -> None:
    client, _, user, body, _ = await signed_in_tokens(served, userinfo_signed_response_alg="EdDSA")
    response = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwt")
    claims = jwt.decode(
        response.text,
        (await served.http.get("/jwks.json")).json(),
        algorithms=["EdDSA"],
        issuer=ISSUER,
        audience=client.client_id,
        require_exp=False,
    )
    assert claims["sub"] == user.user_id and claims["name"] == CLAIMS["name"]


def challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


async def test_userinfo_without_a_token_is_a_bare_challenge(served: Served) -> None:
    response = await served.http.get("/userinfo")
    assert response.status_code == 401
    assert challenge(response) == 'Bearer realm="ostiary"'  # RFC 6750 §3.1: no error code


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-token",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "Bearer " + "a" * 20_000,
    ],
    ids=["unknown", "forged-jwt", "oversized"],
)
async def test_userinfo_refuses_bad_tokens_with_invalid_token(
    served: Served, authorization: str
) -> None:
    response = await served.http.get("/userinfo", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer a\u00e9"]
)
async def test_userinfo_refuses_malformed_credentials_with_invalid_request(
    served: Served, authorization: str
) -> None:
    response = await served.http.get(
        "/userinfo", headers={"Authorization": authorization.encode("utf-8")}
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in challenge(response)


async def test_userinfo_refuses_a_token_sent_two_ways(served: Served) -> None:
    _, _, _, body, _ = await signed_in_tokens(served)
    response = await served.http.post(
        "/userinfo",
        data={"access_token": body["access_token"]},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_userinfo_needs_the_openid_scope(served: Served) -> None:
    _, _, _, body, _ = await signed_in_tokens(served, scope="read profile")
    assert "id_token" not in body
    response = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in challenge(response)


async def test_userinfo_refuses_a_client_credentials_token(served: Served) -> None:
    client, secret = await served.add_client(scopes=SCOPES)
    token = await served.http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "openid"},
        auth=(client.client_id, secret or ""),
    )
    assert token.status_code == 200, token.text
    response = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_userinfo_refuses_revoked_and_expired_tokens(served: Served) -> None:
    client, secret, _, body, _ = await signed_in_tokens(served)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    served.clock.advance(served.runtime.ctx.config.access_token_ttl)
    expired = await served.http.get("/userinfo", headers=headers)
    assert expired.status_code == 401
    served.clock.advance(-served.runtime.ctx.config.access_token_ttl)
    assert (await served.http.get("/userinfo", headers=headers)).status_code == 200
    revoked = await served.http.post(
        "/revoke", data={"token": body["access_token"]}, auth=(client.client_id, secret or "")
    )
    assert revoked.status_code == 200
    response = await served.http.get("/userinfo", headers=headers)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_userinfo_of_an_opaque_token(served: Served) -> None:
    client, secret = await served.add_client(scopes=SCOPES, token_format="opaque")
    user = await served.add_user()
    pkce = Pkce.new()
    params = authorize_params(client, pkce, scope="openid")
    final = await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), user.username)
    token = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(final.headers["location"])["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret or ""),
    )
    access = token.json()["access_token"]
    assert access.count(".") == 0
    response = await served.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert response.json() == {"sub": user.user_id}


async def test_userinfo_refuses_a_dpop_bound_token_sent_as_bearer(served: Served) -> None:
    holder = JWK.generate("EC", crv="P-256", alg="ES256")
    claims = {"htm": "POST", "htu": ISSUER + "/token", "iat": served.clock(), "jti": "j-1"}
    proof = jwt.encode(
        claims, holder, alg="ES256", headers={"typ": "dpop+jwt", "jwk": holder.public().to_dict()}
    )
    _, _, _, body, _ = await signed_in_tokens(served, token_headers={"DPoP": proof})
    assert body["token_type"] == "DPoP"
    response = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_form_post_response_mode_posts_the_code_to_the_client(served: Served) -> None:
    client, _ = await served.add_client(scopes=SCOPES)
    user = await served.add_user()
    params = authorize_params(client, Pkce.new(), scope="openid", response_mode="form_post")
    page = await served.http.get("/authorize?" + urlencode(params))
    page = await submit(served.http, page, username=user.username, password=PASSWORD)
    page = await submit(served.http, page, decision="allow")
    assert page.status_code == 200, page.text
    form = form_of(page)
    assert (form.action, form.method) == (REDIRECT_URI, "post")
    assert set(form.inputs) == {"code", "state", "iss"}
    assert form.inputs["state"] == params["state"] and form.inputs["iss"] == ISSUER
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "form-action 'self' https://app.example" in policy
    script = await served.http.get("/static/form_post.js")
    assert script.status_code == 200 and "submit()" in script.text


async def test_form_post_errors_are_posted_too(served: Served) -> None:
    client, _ = await served.add_client(scopes=SCOPES)
    params = authorize_params(
        client, Pkce.new(), scope="openid", response_mode="form_post", prompt="none"
    )
    page = await served.http.get("/authorize?" + urlencode(params))
    assert page.status_code == 200
    form = form_of(page)
    assert form.action == REDIRECT_URI
    assert form.inputs["error"] == "login_required" and form.inputs["state"] == params["state"]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"response_mode": "web_message"}, "invalid_request"),
        ({"ui_locales": "fr<script>"}, "invalid_request"),
        ({"ui_locales": "x" * 300}, "invalid_request"),
        ({"id_token_hint": "not.a.token"}, "invalid_request"),
    ],
)
async def test_bad_oidc_request_parameters_are_refused_to_the_client(
    served: Served, extra: dict[str, str], error: str
) -> None:
    client, _ = await served.add_client(scopes=SCOPES)
    params = authorize_params(client, Pkce.new(), scope="openid", **extra)
    response = await served.http.get("/authorize?" + urlencode(params))
    assert response.status_code == 302, response.text
    assert query_of(response.headers["location"])["error"] == [error]


async def test_ui_locales_are_accepted(served: Served) -> None:
    client, _ = await served.add_client(scopes=SCOPES)
    params = authorize_params(client, Pkce.new(), scope="openid", ui_locales="fr-CA en")
    page = await served.http.get("/authorize?" + urlencode(params))
    assert page.status_code == 200 and 'name="password"' in page.text


async def test_id_token_hint_with_prompt_none_checks_who_is_signed_in(served: Served) -> None:
    client, secret, user, body, _ = await signed_in_tokens(served, scope="openid")
    hint = body["id_token"]
    silent = authorize_params(client, Pkce.new(), scope="openid", prompt="none", id_token_hint=hint)
    response = await served.http.get("/authorize?" + urlencode(silent))
    assert "code" in query_of(response.headers["location"])  # the hinted user is signed in
    # another person signs in in this browser: the hint no longer names the session's user
    other = await served.add_user()
    forced = authorize_params(client, Pkce.new(), scope="openid", prompt="login")
    await sign_in_and_allow(served.http, "/authorize?" + urlencode(forced), other.username)
    response = await served.http.get("/authorize?" + urlencode(silent))
    assert query_of(response.headers["location"])["error"] == ["login_required"]
    # a hint issued to another client is no hint for this one
    async with served.browser() as elsewhere:
        other_client, _, _, other_body, _ = await signed_in_tokens(
            served, scope="openid", browser=elsewhere
        )
    foreign = authorize_params(
        client, Pkce.new(), scope="openid", id_token_hint=other_body["id_token"]
    )
    response = await served.http.get("/authorize?" + urlencode(foreign))
    assert query_of(response.headers["location"])["error"] == ["invalid_request"]
    assert other_client.client_id != client.client_id and secret is not None and user
