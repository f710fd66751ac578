"""The `claims` request parameter (OpenID Connect Core §5.5) through the app, on SQLite and
PostgreSQL: individual claims in the ID token and UserInfo, named on the consent page, kept
for the refresh-token family; malformed requests refused with no state change; `sub` values
(§5.5.1) honoured."""

from __future__ import annotations

import dataclasses
import json
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
from ostiary.oauth.models import Client, ClientOidc, User
from ostiary.oauth.subject import subject_for

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"openid", "profile", "email", "address", "phone"})
CLAIMS = {
    "name": "Alice Liddell",
    "email": "alice@example.com",
    "email_verified": True,
    "phone_number": "+44 1865 000000",
}
ASKED = {
    "id_token": {"email": {"essential": True}, "nickname": None},  # no nickname: left out
    "userinfo": {"phone_number": None, "name": None},
}


async def setup(served: Served, **oidc: Any) -> tuple[Client, str, User]:
    client, secret = await served.add_client(scopes=SCOPES, oidc=ClientOidc(**oidc))
    user = await served.add_user()
    user = dataclasses.replace(user, claims=CLAIMS)
    assert await served.store.users.update(user)
    assert secret is not None
    return client, secret, user


async def redeem(
    served: Served, client: Client, secret: str, final: httpx.Response, pkce: Pkce
) -> Any:
    """The token response for the code in `final`, the redirect back to the client."""
    code = query_of(final.headers["location"])["code"][0]
    response = await served.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client.client_id, secret),
    )
    assert response.status_code == 200, response.text
    return response.json()


async def id_token_claims(served: Served, client: Client, token: str) -> dict[str, Any]:
    jwks = (await served.http.get("/jwks.json")).json()
    return jwt.decode(
        token,
        jwks,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=client.client_id,
        now=served.clock(),
    )


async def userinfo(served: Served, access_token: str) -> dict[str, Any]:
    response = await served.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_discovery_says_the_claims_parameter_works(served: Served) -> None:
    document = (await served.http.get("/.well-known/openid-configuration")).json()
    assert document["claims_parameter_supported"] is True
    for name in ("email", "phone_number", "name", "sub", "auth_time"):
        assert name in document["claims_supported"]
    assert "acr" not in document["claims_supported"]  # never asserted, so never advertised


async def test_individual_claims_reach_the_id_token_and_userinfo_for_the_whole_grant(
    served: Served,
) -> None:
    """With only `openid` granted, the claims asked for one by one are released where they
    were asked for, named on the consent page, and still so after refreshes."""
    client, secret, user = await setup(served)
    pkce = Pkce.new()
    params = authorize_params(client, pkce, scope="openid", claims=json.dumps(ASKED))
    page = await served.http.get("/authorize?" + urlencode(params))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert consent.status_code == 200, consent.text
    for words in ("Your email address", "Your phone number", "Your full name", "Your nickname"):
        assert words in consent.text
    final = await submit(served.http, consent, decision="allow")
    body = await redeem(served, client, secret, final, pkce)

    claims = await id_token_claims(served, client, body["id_token"])
    assert claims["email"] == "alice@example.com"
    assert "nickname" not in claims  # §5.5: a claim the user does not have is left out
    assert "phone_number" not in claims and "name" not in claims  # asked for UserInfo only
    assert await userinfo(served, body["access_token"]) == {
        "sub": user.user_id,
        "phone_number": "+44 1865 000000",
        "name": "Alice Liddell",
    }

    for _ in range(2):  # the grant keeps its claims request through every rotation
        served.clock.advance(60)
        refreshed = await served.http.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
            auth=(client.client_id, secret),
        )
        assert refreshed.status_code == 200, refreshed.text
        body = refreshed.json()
        again = await id_token_claims(served, client, body["id_token"])
        assert again["email"] == "alice@example.com" and again["sub"] == user.user_id
        assert "nonce" not in again
        info = await userinfo(served, body["access_token"])
        assert info["phone_number"] == "+44 1865 000000"

    # the approval of the individual claims is remembered: no consent page the next time
    params = authorize_params(client, Pkce.new(), scope="openid", claims=json.dumps(ASKED))
    response = await served.http.get("/authorize?" + urlencode(params))
    assert response.status_code == 302 and "code" in query_of(response.headers["location"])
    # a claim never approved asks again, and prompt=none says so
    wider = {"userinfo": {"email_verified": None}}
    params = authorize_params(
        client, Pkce.new(), scope="openid", claims=json.dumps(wider), prompt="none"
    )
    response = await served.http.get("/authorize?" + urlencode(params))
    assert query_of(response.headers["location"])["error"] == ["consent_required"]


async def test_claims_outside_the_clients_scopes_are_never_released(served: Served) -> None:
    client, secret = await served.add_client(scopes=frozenset({"openid", "profile"}))
    user = await served.add_user()
    assert await served.store.users.update(dataclasses.replace(user, claims=CLAIMS))
    pkce = Pkce.new()
    asked = {"id_token": {"email": None, "name": None}, "userinfo": {"phone_number": None}}
    params = authorize_params(client, pkce, scope="openid", claims=json.dumps(asked))
    final = await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), user.username)
    assert secret is not None
    body = await redeem(served, client, secret, final, pkce)
    claims = await id_token_claims(served, client, body["id_token"])
    assert claims["name"] == "Alice Liddell" and "email" not in claims
    assert "phone_number" not in await userinfo(served, body["access_token"])


async def test_claims_without_openid_are_ignored(served: Served) -> None:
    client, secret, user = await setup(served)
    client = dataclasses.replace(client, scopes=SCOPES | {"read"})
    assert await served.store.clients.update(client)
    pkce = Pkce.new()
    params = authorize_params(client, pkce, scope="read", claims=json.dumps(ASKED))
    final = await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), user.username)
    body = await redeem(served, client, secret, final, pkce)
    assert "id_token" not in body


@pytest.mark.parametrize(
    "claims",
    [
        "{not json",
        "[]",
        json.dumps({"userinfo": {"email": {"essential": "yes"}}}),
        json.dumps({"id_token": {"email": {"values": []}}}),
        json.dumps({"userinfo": {"email": None}, "pad": "x" * 5000}),
        '{"id_token": {}, "id_token": {}}',
    ],
    ids=["not-json", "array", "essential-type", "empty-values", "oversized", "duplicate"],
)
async def test_malformed_claims_are_refused_to_the_client_with_no_state_change(
    served: Served, claims: str
) -> None:
    client, _, user = await setup(served)
    # signed in, consent remembered: a good request would go straight back with a code
    await sign_in_and_allow(
        served.http,
        "/authorize?" + urlencode(authorize_params(client, Pkce.new(), scope="openid")),
        user.username,
    )
    before = await served.store.consents.get(user.user_id, client.client_id)
    events = await served.store.audit.tail(100)
    params = authorize_params(client, Pkce.new(), scope="openid", claims=claims)
    response = await served.http.get("/authorize?" + urlencode(params))
    assert response.status_code == 302, response.text
    query = query_of(response.headers["location"])
    assert query["error"] == ["invalid_request"] and "code" not in query
    assert query["state"] == [params["state"]]
    assert "claims" in query["error_description"][0]
    assert await served.store.consents.get(user.user_id, client.client_id) == before
    assert await served.store.audit.tail(100) == events  # no code issued, nothing recorded


async def test_repeated_claims_parameter_is_refused(served: Served) -> None:
    client, _, _ = await setup(served)
    params = list(authorize_params(client, Pkce.new(), scope="openid").items())
    params += [("claims", "{}"), ("claims", "{}")]
    response = await served.http.get("/authorize?" + urlencode(params))
    assert query_of(response.headers["location"])["error"] == ["invalid_request"]


async def test_essential_acr_values_are_refused_as_access_denied(served: Served) -> None:
    client, _, _ = await setup(served)
    asked = {"id_token": {"acr": {"essential": True, "values": ["urn:example:loa:3"]}}}
    params = authorize_params(client, Pkce.new(), scope="openid", claims=json.dumps(asked))
    response = await served.http.get("/authorize?" + urlencode(params))
    assert query_of(response.headers["location"])["error"] == ["access_denied"]


async def test_sub_value_names_who_may_be_answered_for(served: Served) -> None:
    """§5.5.1: a positive answer only for the user the `sub` value names; never tokens for
    another user, even one who is signed in."""
    client, secret, alice = await setup(served)
    bob = await served.add_user()
    sign_in = authorize_params(client, Pkce.new(), scope="openid")
    await sign_in_and_allow(served.http, "/authorize?" + urlencode(sign_in), alice.username)

    def asking_for(subject: str, **extra: str) -> str:
        asked = {"id_token": {"sub": {"value": subject}}}
        params = authorize_params(
            client, Pkce.new(), scope="openid", claims=json.dumps(asked), **extra
        )
        return "/authorize?" + urlencode(params)

    # alice is signed in and named: a code at once
    response = await served.http.get(asking_for(alice.user_id, prompt="none"))
    assert "code" in query_of(response.headers["location"])
    # bob is named while alice is signed in: prompt=none cannot ask, so login_required
    response = await served.http.get(asking_for(bob.user_id, prompt="none"))
    assert query_of(response.headers["location"])["error"] == ["login_required"]
    # without prompt=none the login page asks; signing in as someone else is refused
    page = await served.http.get(asking_for(bob.user_id))
    assert page.status_code == 200 and 'name="password"' in page.text
    refused = await submit(served.http, page, username=alice.username, password=PASSWORD)
    assert refused.status_code == 303
    query = query_of(refused.headers["location"])
    assert query["error"] == ["access_denied"] and "code" not in query
    # signing in as bob gives bob's code, whose ID token names bob
    pkce = Pkce.new()
    asked = {"id_token": {"sub": {"value": bob.user_id}}}
    params = authorize_params(client, pkce, scope="openid", claims=json.dumps(asked))
    final = await sign_in_and_allow(served.http, "/authorize?" + urlencode(params), bob.username)
    body = await redeem(served, client, secret, final, pkce)
    assert (await id_token_claims(served, client, body["id_token"]))["sub"] == bob.user_id


async def test_sub_value_is_the_pairwise_subject_for_a_pairwise_client(served: Served) -> None:
    client, _, alice = await setup(served, subject_type="pairwise")
    await sign_in_and_allow(
        served.http,
        "/authorize?" + urlencode(authorize_params(client, Pkce.new(), scope="openid")),
        alice.username,
    )
    pairwise = subject_for(client, alice.user_id, served.runtime.ctx.config)
    for subject, ok in ((alice.user_id, False), ("not-her", False), (pairwise, True)):
        asked = {"userinfo": {"sub": {"value": subject}}}
        params = authorize_params(
            client, Pkce.new(), scope="openid", claims=json.dumps(asked), prompt="none"
        )
        response = await served.http.get("/authorize?" + urlencode(params))
        assert ("code" in query_of(response.headers["location"])) is ok


async def test_consent_page_names_claims_only_once(served: Served) -> None:
    """A claim the shown scopes already release is not listed again."""
    client, _, user = await setup(served)
    asked = {"userinfo": {"email": None, "phone_number": None}}
    params = authorize_params(client, Pkce.new(), scope="openid email", claims=json.dumps(asked))
    page = await served.http.get("/authorize?" + urlencode(params))
    consent = await submit(served.http, page, username=user.username, password=PASSWORD)
    assert consent.text.count("Your phone number") == 1
    assert "Your email address" not in consent.text  # the email scope's line says it
    assert ("decision", "allow") in form_of(consent).buttons
