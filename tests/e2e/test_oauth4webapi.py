"""Node's `oauth4webapi` against a real `ostiary serve`: discovery, authorization code + PKCE,
refresh, client_credentials, introspection and revocation.

Each step is one `node node/client.mjs` run (JSON in, JSON out). oauth4webapi checks the
metadata's issuer, the authorization response's `state` and `iss` (RFC 9207), and each
access token the way an RFC 9068 resource server would (typ, signature by the JWKS, iss,
aud, exp). The person at the login and consent pages is played by httpx.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import SCOPES, CallbackServer, OstiaryServer, Person, SignedClient
from e2e_user_agent import authorize

from node_packages import node_with_packages

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_TIMEOUT = 30


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with `tests/e2e/node/node_modules` installed from the lockfile."""
    return node_with_packages(NODE_DIR, "tests/e2e/node")


class Node:
    """Runs one step of `client.mjs` for one client of one server."""

    def __init__(self, node: str, server: OstiaryServer, client: dict[str, Any]) -> None:
        self._node = node
        self._base = {
            "issuer": server.issuer,
            "client_id": client["client_id"],
            "client_secret": client.get("client_secret"),
            "private_jwk": client.get("private_jwk"),
            "audience": server.issuer,  # no resource asked: the default audience
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


def test_discovery(node: str, server: OstiaryServer, confidential_client: dict[str, Any]) -> None:
    metadata = Node(node, server, confidential_client).ok("discover")["metadata"]
    assert metadata["issuer"] == server.issuer
    assert "authorization_code" in metadata["grant_types_supported"]
    assert "client_credentials" in metadata["grant_types_supported"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


@pytest.fixture(params=["confidential", "public"])
def code_client(
    request: pytest.FixtureRequest,
    confidential_client: dict[str, Any],
    public_client: dict[str, Any],
) -> dict[str, Any]:
    """client_secret_basic, then none (a public client: PKCE is its only proof)."""
    return confidential_client if request.param == "confidential" else public_client


def test_code_flow_with_pkce_then_refresh(
    node: str,
    server: OstiaryServer,
    code_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    client = code_client
    oauth = Node(node, server, client)
    started = oauth.ok("authorize", redirect_uri=callback.redirect_uri, scope=SCOPES)
    with httpx.Client(timeout=10) as user_agent:
        journey = authorize(
            user_agent,
            started["authorization_url"],
            redirect_uri=callback.redirect_uri,
            username=regular_person.username,
            password=regular_person.password,
        )
    assert journey.callback_url is not None, [page.text for page in journey.pages]

    redeemed = oauth.ok(
        "redeem",
        callback_url=journey.callback_url,
        state=started["state"],
        code_verifier=started["code_verifier"],
        redirect_uri=callback.redirect_uri,
    )
    tokens, claims = redeemed["tokens"], redeemed["claims"]
    assert tokens["token_type"].lower() == "bearer"
    assert claims["client_id"] == client["client_id"]
    assert set(claims["scope"].split()) == set(SCOPES.split())

    refreshed = oauth.ok("refresh", refresh_token=tokens["refresh_token"])
    assert refreshed["tokens"]["refresh_token"] != tokens["refresh_token"]
    assert refreshed["claims"]["sub"] == claims["sub"]

    # The same code a second time: refused (RFC 6749 §4.1.2), as oauth4webapi reports it.
    replayed = oauth.run(
        "redeem",
        callback_url=journey.callback_url,
        state=started["state"],
        code_verifier=started["code_verifier"],
        redirect_uri=callback.redirect_uri,
    )
    assert not replayed["ok"]
    assert (replayed["status"], replayed["oauth_error"]) == (400, "invalid_grant")


def test_client_credentials_introspection_and_revocation(
    node: str, server: OstiaryServer, confidential_client: dict[str, Any]
) -> None:
    oauth = Node(node, server, confidential_client)
    issued = oauth.ok("client_credentials", scope="read")
    token = issued["tokens"]["access_token"]
    assert issued["claims"]["client_id"] == confidential_client["client_id"]
    assert issued["claims"]["scope"] == "read"
    assert "refresh_token" not in issued["tokens"]

    introspection = oauth.ok("introspect", token=token)["introspection"]
    assert introspection["active"] is True
    assert introspection["client_id"] == confidential_client["client_id"]
    assert introspection["scope"] == "read"

    # RFC 7009 §2.2 then RFC 7662: a revoked JWT access token introspects as inactive.
    oauth.ok("revoke", token=token)
    assert oauth.ok("introspect", token=token)["introspection"] == {"active": False}


def test_client_credentials_with_private_key_jwt(
    node: str, server: OstiaryServer, signed_client: SignedClient
) -> None:
    # oauth4webapi's assertion: aud is the issuer, exp a minute ahead, a fresh jti each time.
    client = {
        "client_id": signed_client.client_id,
        "private_jwk": signed_client.key.to_dict(private=True),
    }
    oauth = Node(node, server, client)
    for _ in range(2):
        issued = oauth.ok("client_credentials", scope="read")
        assert issued["claims"]["client_id"] == signed_client.client_id
