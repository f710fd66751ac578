"""Authlib's OAuth 2 client (Python) against a real `ostiary serve`: metadata, authorization
code + PKCE, refresh with rotation, and client_credentials.

The person at the login and consent pages is played by httpx submitting the pages' forms.
"""

from __future__ import annotations

import time
import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # type: ignore[import-untyped]
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # type: ignore[import-untyped]
from e2e_server import SCOPES, CallbackServer, OstiaryServer, Person, SignedClient
from e2e_user_agent import authorize
from joserfc.jwk import ECKey

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` fork and warns once when it falls back to httpx,
    # which it still supports; the warning is about packaging, not about this client.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        OAuth2Client,
        OAuthError,
    )

TIMEOUT = 10


def authlib_client(client: dict[str, Any], callback: CallbackServer, **kwargs: Any) -> Any:
    """Authlib's client, authenticating with client_secret_basic (its default)."""
    return OAuth2Client(
        client_id=client["client_id"],
        client_secret=client.get("client_secret"),
        redirect_uri=callback.redirect_uri,
        code_challenge_method="S256",
        timeout=TIMEOUT,
        **kwargs,
    )


def test_metadata_passes_authlib_validation(server: OstiaryServer) -> None:
    metadata = server.metadata()
    AuthorizationServerMetadata(metadata).validate()  # RFC 8414 §2, as Authlib reads it
    assert metadata["issuer"] == server.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


def log_in_and_consent(url: str, callback: CallbackServer, person: Person) -> str:
    with httpx.Client(timeout=TIMEOUT) as user_agent:
        journey = authorize(
            user_agent,
            url,
            redirect_uri=callback.redirect_uri,
            username=person.username,
            password=person.password,
        )
    assert journey.callback_url is not None, [page.text for page in journey.pages]
    return journey.callback_url


def test_code_flow_with_pkce_then_refresh_rotation(
    server: OstiaryServer,
    confidential_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    token_endpoint = server.endpoint("token")
    with authlib_client(confidential_client, callback, scope=SCOPES) as oauth:
        verifier = generate_token(48)
        url, state = oauth.create_authorization_url(
            server.endpoint("authorization"), code_verifier=verifier
        )
        callback_url = log_in_and_consent(url, callback, regular_person)
        response = parse_qs(urlsplit(callback_url).query)
        assert response["iss"] == [server.issuer]  # RFC 9207 §2
        assert response["state"] == [state]

        token = oauth.fetch_token(
            token_endpoint, authorization_response=callback_url, code_verifier=verifier
        )
        assert set(token["scope"].split()) == set(SCOPES.split())
        claims = server.access_token_claims(token["access_token"])
        assert claims["client_id"] == confidential_client["client_id"]

        # Refresh tokens rotate on every use (OAuth 2.1 §4.3.1); the grant stays the same.
        first_refresh = token["refresh_token"]
        refreshed = oauth.refresh_token(token_endpoint, refresh_token=first_refresh)
        assert refreshed["refresh_token"] != first_refresh
        again = server.access_token_claims(refreshed["access_token"])
        assert again["sub"] == claims["sub"]
        assert set(again["scope"].split()) == set(SCOPES.split())

        # Presenting the rotated token again is reuse: refused, and the family is revoked.
        with pytest.raises(OAuthError) as reused:
            oauth.refresh_token(token_endpoint, refresh_token=first_refresh)
        assert reused.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as revoked:
            oauth.refresh_token(token_endpoint, refresh_token=refreshed["refresh_token"])
        assert revoked.value.error == "invalid_grant"

        introspected = oauth.introspect_token(
            server.endpoint("introspection"), token=refreshed["access_token"]
        )
        assert introspected.status_code == 200, introspected.text
        assert introspected.json() == {"active": False}  # RFC 7662 §2.2


def test_public_client_code_flow_with_pkce(
    server: OstiaryServer,
    public_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    with authlib_client(
        public_client, callback, scope="read", token_endpoint_auth_method="none"
    ) as oauth:
        verifier = generate_token(48)
        url, _ = oauth.create_authorization_url(
            server.endpoint("authorization"), code_verifier=verifier
        )
        callback_url = log_in_and_consent(url, callback, regular_person)
        token = oauth.fetch_token(
            server.endpoint("token"), authorization_response=callback_url, code_verifier=verifier
        )
        assert token["scope"] == "read"
        assert server.access_token_claims(token["access_token"])["scope"] == "read"

        refreshed = oauth.refresh_token(server.endpoint("token"))
        assert refreshed["refresh_token"] != token["refresh_token"]


def test_code_with_wrong_verifier_is_refused(
    server: OstiaryServer,
    confidential_client: dict[str, Any],
    callback: CallbackServer,
    regular_person: Person,
) -> None:
    with authlib_client(confidential_client, callback, scope=SCOPES) as oauth:
        url, _ = oauth.create_authorization_url(
            server.endpoint("authorization"), code_verifier=generate_token(48)
        )
        callback_url = log_in_and_consent(url, callback, regular_person)
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(
                server.endpoint("token"),
                authorization_response=callback_url,
                code_verifier=generate_token(48),
            )
        assert refused.value.error == "invalid_grant"  # RFC 7636 §4.6


def test_client_credentials(
    server: OstiaryServer, confidential_client: dict[str, Any], callback: CallbackServer
) -> None:
    with authlib_client(confidential_client, callback, scope="read") as oauth:
        token = oauth.fetch_token(server.endpoint("token"), grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "read"
        assert "refresh_token" not in token  # OAuth 2.1 §4.2.3: none for client_credentials
        claims = server.access_token_claims(token["access_token"])
        assert claims["client_id"] == confidential_client["client_id"]
        assert claims["scope"] == "read"


def test_client_credentials_with_wrong_secret_is_refused(
    server: OstiaryServer, confidential_client: dict[str, Any], callback: CallbackServer
) -> None:
    wrong = {**confidential_client, "client_secret": confidential_client["client_secret"] + "x"}
    with authlib_client(wrong, callback, scope="read") as oauth:
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(server.endpoint("token"), grant_type="client_credentials")
        assert refused.value.error == "invalid_client"  # RFC 6749 §5.2


def signed_authlib_client(server: OstiaryServer, signed: SignedClient, auth: Any) -> Any:
    private = ECKey.import_key(signed.key.to_dict(private=True))
    oauth = OAuth2Client(
        client_id=signed.client_id,
        client_secret=private,  # Authlib's slot for the private key
        token_endpoint_auth_method="private_key_jwt",
        scope="read",
        timeout=TIMEOUT,
    )
    oauth.register_client_auth_method(auth)
    return oauth


def test_client_credentials_with_private_key_jwt(
    server: OstiaryServer, signed_client: SignedClient
) -> None:
    token_endpoint = server.endpoint("token")
    # Authlib's assertion: aud is the token endpoint URL (RFC 7523 §3). Its `claims` are
    # fixed here, jti included, so the second request replays the first assertion.
    claims = {"exp": int(time.time()) + 60, "jti": generate_token(24)}
    auth = PrivateKeyJWT(
        token_endpoint, alg="ES256", headers={"kid": signed_client.key.kid}, claims=claims
    )
    with signed_authlib_client(server, signed_client, auth) as oauth:
        token = oauth.fetch_token(token_endpoint, grant_type="client_credentials")
        access = server.access_token_claims(token["access_token"])
        assert access["client_id"] == signed_client.client_id
        with pytest.raises(OAuthError) as replayed:  # RFC 7523 §3 item 7: a jti is used once
            oauth.fetch_token(token_endpoint, grant_type="client_credentials")
        assert replayed.value.error == "invalid_client"


def test_private_key_jwt_with_authlib_defaults(
    server: OstiaryServer, signed_client: SignedClient
) -> None:
    token_endpoint = server.endpoint("token")
    auth = PrivateKeyJWT(token_endpoint, alg="ES256")  # iat now, exp an hour ahead
    with signed_authlib_client(server, signed_client, auth) as oauth:
        token = oauth.fetch_token(token_endpoint, grant_type="client_credentials")
        assert server.access_token_claims(token["access_token"])["client_id"]
