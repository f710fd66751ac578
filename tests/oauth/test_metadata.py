"""RFC 8414 metadata: every advertised endpoint and feature is one that works."""

from __future__ import annotations

import json

import pytest
from core_context import ISSUER

from ostiary.oauth.claims import claims_for_scope
from ostiary.oauth.claims_request import parse_claims_request
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.context import Context
from ostiary.oauth.metadata import (
    authorization_server_metadata,
    jwks_document,
    openid_configuration,
)

pytestmark = pytest.mark.anyio


def test_metadata_names_the_endpoints_under_the_issuer() -> None:
    document = authorization_server_metadata(ServerConfig(issuer=ISSUER))
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == ISSUER + "/authorize"
    assert document["token_endpoint"] == ISSUER + "/token"
    assert document["revocation_endpoint"] == ISSUER + "/revoke"
    assert document["introspection_endpoint"] == ISSUER + "/introspect"
    assert document["jwks_uri"] == ISSUER + "/jwks.json"
    json.dumps(document)  # served as JSON as is


def test_metadata_advertises_only_what_works() -> None:
    document = authorization_server_metadata(ServerConfig(issuer=ISSUER))
    assert document["response_types_supported"] == ["code"]  # no implicit, no hybrid
    assert document["code_challenge_methods_supported"] == ["S256"]  # no plain
    assert document["authorization_response_iss_parameter_supported"] is True
    assert set(document["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
    }
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert "none" not in document["introspection_endpoint_auth_methods_supported"]
    algorithms = document["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in algorithms
    assert not any(alg.startswith("HS") for alg in algorithms)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_access_token_algorithms_cover_what_the_server_signs_with(alg: str) -> None:
    """A resource server takes its allow-list from this value: every algorithm the server
    may sign access tokens with is in it, and nothing symmetric or `none` is."""
    document = authorization_server_metadata(ServerConfig(issuer=ISSUER, signing_alg=alg))
    algorithms = document["access_token_signing_alg_values_supported"]
    assert alg in algorithms
    assert not {a for a in algorithms if a.startswith("HS") or a == "none"}


def test_metadata_follows_the_configured_issuer() -> None:
    document = authorization_server_metadata(ServerConfig(issuer="http://127.0.0.1:8000"))
    urls = [v for k, v in document.items() if k.endswith(("_endpoint", "_uri"))]
    assert urls
    assert all(url.startswith("http://127.0.0.1:8000/") for url in urls)


async def test_jwks_document_holds_only_public_keys(ctx: Context) -> None:
    document = await jwks_document(ctx)
    assert [key["kid"] for key in document["keys"]] == ["test-es256"]
    for key in document["keys"]:
        assert "d" not in key


def test_claims_supported_are_claims_the_server_can_release() -> None:
    """Every claim in `claims_supported` is one an ID token carries itself, or a user claim
    that a supported scope releases and the `claims` parameter can ask for one by one."""
    document = openid_configuration(ServerConfig(issuer=ISSUER))
    assert document["claims_parameter_supported"] is True
    scopes = frozenset(document["scopes_supported"])
    releasable = claims_for_scope(scopes)
    own = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid"}
    asked = {"id_token": dict.fromkeys(document["claims_supported"])}
    kept = parse_claims_request(json.dumps(asked), scopes).id_token
    for name in document["claims_supported"]:
        assert name in own or name in releasable, name
        assert name in own - {"sub", "auth_time"} or name in kept, name
    assert "acr" not in document["claims_supported"]
    assert "acr_values_supported" not in document
