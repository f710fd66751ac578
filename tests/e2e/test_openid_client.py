"""Node's `openid-client` (a strict, certified OpenID Connect relying party) against a real
`ostiary serve`: discovery, dynamic registration, the code flow with PKCE and nonce, ID token
validation, UserInfo, refresh, RP-initiated logout, and the `claims` request parameter.

Each step is one `node openid_client/client.mjs` run (JSON in, JSON out) that starts from
discovery. openid-client checks the issuer, `state` and `iss` on the authorization response,
and the ID token (signature by the JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`, the registered
`alg`), the UserInfo `sub`, and that a refreshed ID token keeps the subject. The person at the
login and consent pages is played by httpx.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import CallbackServer, OstiaryServer, Person
from e2e_user_agent import authorize

from node_packages import node_with_packages

NODE_DIR = Path(__file__).resolve().parent / "openid_client"
NODE_TIMEOUT = 30


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with `openid_client/node_modules` installed from the lockfile."""
    return node_with_packages(NODE_DIR, NODE_DIR.name)


class RelyingParty:
    """Runs the steps of `client.mjs` for one client of one server."""

    def __init__(self, node: str, server: OstiaryServer, client: dict[str, Any]) -> None:
        self._node = node
        self._base = {
            "issuer": server.issuer,
            "client_id": client.get("client_id"),
            "client_secret": client.get("client_secret"),
        }

    def run(self, step: str, **params: Any) -> dict[str, Any]:
        done = subprocess.run(
            [self._node, "client.mjs"],
            input=json.dumps({"step": step, **self._base, **params}),
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"node client.mjs {step} crashed:\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def ok(self, step: str, **params: Any) -> dict[str, Any]:
        result = self.run(step, **params)
        assert result["ok"], f"{step}: {result}"
        return result


def registered(
    node: str, server: OstiaryServer, callback: CallbackServer, **metadata: Any
) -> dict[str, Any]:
    """A client registered by openid-client itself, with an initial access token."""
    token = server.ostiary("clients", "registration-token", "--ttl", "5m").stdout.strip()
    metadata = {
        "client_name": "openid-client RP",
        "redirect_uris": [callback.redirect_uri],
        "post_logout_redirect_uris": [callback.redirect_uri.replace("/callback", "/bye")],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email",
        **metadata,
    }
    answer = RelyingParty(node, server, {}).ok(
        "register", metadata=metadata, initial_access_token=token
    )
    client: dict[str, Any] = answer["metadata"]
    return client


def sign_in(server: OstiaryServer, url: str, redirect_uri: str, person: Person) -> str:
    with httpx.Client(timeout=10) as user_agent:
        journey = authorize(
            user_agent,
            url,
            redirect_uri=redirect_uri,
            username=person.username,
            password=person.password,
        )
    assert journey.callback_url is not None, [page.text for page in journey.pages]
    return journey.callback_url


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_openid_client_signs_in_reads_userinfo_refreshes_and_logs_out(
    node: str, server: OstiaryServer, callback: CallbackServer, person: Person, alg: str
) -> None:
    set_claims = server.ostiary(
        *("users", "set", "--username", person.username),
        *("--claim", "name=Ada Lovelace", "--claim", "email=ada@example.com"),
        *("--claim", "email_verified=true"),
    )
    assert set_claims.returncode == 0, set_claims.stderr
    client = registered(node, server, callback, id_token_signed_response_alg=alg)
    assert client["id_token_signed_response_alg"] == alg
    assert client["token_endpoint_auth_method"] == "client_secret_basic"
    rp = RelyingParty(node, server, client)

    started = rp.ok("authorize", redirect_uri=callback.redirect_uri, scope="openid profile email")
    callback_url = sign_in(server, started["authorization_url"], callback.redirect_uri, person)
    redeemed = rp.ok(
        "redeem",
        callback_url=callback_url,
        code_verifier=started["code_verifier"],
        nonce=started["nonce"],
        state=started["state"],
    )
    tokens, id_claims = redeemed["tokens"], redeemed["claims"]
    assert id_claims["nonce"] == started["nonce"]
    assert id_claims["aud"] == client["client_id"] and id_claims["iss"] == server.issuer
    assert isinstance(id_claims["auth_time"], int)

    userinfo = rp.ok("userinfo", access_token=tokens["access_token"], sub=id_claims["sub"])
    assert userinfo["userinfo"] == {
        "sub": id_claims["sub"],
        "name": "Ada Lovelace",
        "preferred_username": person.username,
        "updated_at": userinfo["userinfo"]["updated_at"],
        "email": "ada@example.com",
        "email_verified": True,
    }
    # openid-client checks the sub against the one it expects: another one is refused
    wrong = rp.run("userinfo", access_token=tokens["access_token"], sub="someone-else")
    assert not wrong["ok"]

    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])
    assert refreshed["claims"]["sub"] == id_claims["sub"]
    assert refreshed["claims"]["auth_time"] == id_claims["auth_time"]

    bye = client["post_logout_redirect_uris"][0]
    logout = rp.ok(
        "logout_url", id_token_hint=tokens["id_token"], post_logout_redirect_uri=bye, state="l-1"
    )["logout_url"]
    openid_configuration = httpx.get(
        f"{server.issuer}/.well-known/openid-configuration", timeout=10
    ).json()
    assert logout.startswith(openid_configuration["end_session_endpoint"] + "?")
    with httpx.Client(timeout=10) as user_agent:
        response = user_agent.get(logout)
    assert response.status_code == 302
    assert response.headers["location"] == f"{bye}?state=l-1"


def test_openid_client_refuses_a_replayed_nonce_and_we_refuse_a_foreign_logout_target(
    node: str, server: OstiaryServer, callback: CallbackServer, person: Person
) -> None:
    client = registered(node, server, callback)
    rp = RelyingParty(node, server, client)
    started = rp.ok("authorize", redirect_uri=callback.redirect_uri, scope="openid")
    callback_url = sign_in(server, started["authorization_url"], callback.redirect_uri, person)
    # the ID token carries the nonce it was sent: one the RP did not send is refused by it
    wrong_nonce = rp.run(
        "redeem",
        callback_url=callback_url,
        code_verifier=started["code_verifier"],
        nonce="another-nonce",
        state=started["state"],
    )
    assert not wrong_nonce["ok"] and wrong_nonce["claim"] == "nonce", wrong_nonce
    # the code was spent by that attempt: a second redemption is invalid_grant
    again = rp.run(
        "redeem",
        callback_url=callback_url,
        code_verifier=started["code_verifier"],
        nonce=started["nonce"],
        state=started["state"],
    )
    assert not again["ok"] and again["error"] == "invalid_grant"
    logout = rp.ok(
        "logout_url", id_token_hint="x.y.z", post_logout_redirect_uri="https://evil.example/"
    )["logout_url"]
    with httpx.Client(timeout=10) as user_agent:
        response = user_agent.get(logout)
    assert response.status_code == 400 and "location" not in response.headers


def test_registration_without_an_initial_access_token_is_refused(
    node: str, server: OstiaryServer, callback: CallbackServer
) -> None:
    refused = RelyingParty(node, server, {}).run(
        "register",
        metadata={"redirect_uris": [callback.redirect_uri]},
        initial_access_token=None,
    )
    assert not refused["ok"]
    assert refused["status"] == 401, refused


def test_openid_client_asks_for_single_claims_with_the_claims_parameter(
    node: str, server: OstiaryServer, callback: CallbackServer, person: Person
) -> None:
    """OpenID Connect Core §5.5 through openid-client: with only `openid` asked for, the
    claims named in `claims` reach the ID token it validates, UserInfo it checks the `sub`
    of, and the ID token of a refresh."""
    set_claims = server.ostiary(
        *("users", "set", "--username", person.username),
        *("--claim", "name=Grace Hopper", "--claim", "email=grace@example.com"),
    )
    assert set_claims.returncode == 0, set_claims.stderr
    rp = RelyingParty(node, server, registered(node, server, callback))
    asked = {"id_token": {"email": {"essential": True}}, "userinfo": {"name": None}}
    started = rp.ok(
        "authorize",
        redirect_uri=callback.redirect_uri,
        scope="openid",
        extra={"claims": json.dumps(asked)},
    )
    callback_url = sign_in(server, started["authorization_url"], callback.redirect_uri, person)
    redeemed = rp.ok(
        "redeem",
        callback_url=callback_url,
        code_verifier=started["code_verifier"],
        nonce=started["nonce"],
        state=started["state"],
    )
    tokens, id_claims = redeemed["tokens"], redeemed["claims"]
    assert id_claims["email"] == "grace@example.com" and "name" not in id_claims
    assert "scope" not in tokens or tokens["scope"] == "openid"
    userinfo = rp.ok("userinfo", access_token=tokens["access_token"], sub=id_claims["sub"])
    assert userinfo["userinfo"] == {"sub": id_claims["sub"], "name": "Grace Hopper"}
    refreshed = rp.ok("refresh", refresh_token=tokens["refresh_token"])
    assert refreshed["claims"]["email"] == "grace@example.com"
