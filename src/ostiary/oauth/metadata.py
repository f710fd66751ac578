"""Authorization server metadata (RFC 8414) and the JWKS document: only what works."""

from __future__ import annotations

from typing import Any, Final

from ostiary.jose.dpop import DPOP_ALGORITHMS

from .access_tokens import SERVER_SIGNING_ALGORITHMS
from .claims import STANDARD_CLAIMS
from .client_auth import ASSERTION_ALGORITHMS
from .config import ServerConfig
from .context import Context
from .models import ID_TOKEN_ALGORITHMS

AUTHORIZATION_PATH: Final = "/authorize"
TOKEN_PATH: Final = "/token"
REVOCATION_PATH: Final = "/revoke"
INTROSPECTION_PATH: Final = "/introspect"
JWKS_PATH: Final = "/jwks.json"
METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
OPENID_CONFIGURATION_PATH: Final = "/.well-known/openid-configuration"
USERINFO_PATH: Final = "/userinfo"
REGISTRATION_PATH: Final = "/register"
END_SESSION_PATH: Final = "/logout"
# OpenID Connect Core §2 and §3.1.3.6: what an ID token may hold besides the user's claims.
_ID_TOKEN_CLAIMS: Final = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
)

_CLIENT_AUTH_METHODS: Final = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
]


def token_endpoint(config: ServerConfig) -> str:
    return config.issuer + TOKEN_PATH


def revocation_endpoint(config: ServerConfig) -> str:
    return config.issuer + REVOCATION_PATH


def introspection_endpoint(config: ServerConfig) -> str:
    return config.issuer + INTROSPECTION_PATH


def authorization_server_metadata(config: ServerConfig) -> dict[str, Any]:
    """The RFC 8414 §2 document served at `/.well-known/oauth-authorization-server`.

    The password grant works for clients that opted in, but is not advertised: discovery
    should not invite new clients to a grant OAuth 2.1 removed.
    """
    algorithms = list(ASSERTION_ALGORITHMS)
    return {
        "issuer": config.issuer,
        "authorization_endpoint": config.issuer + AUTHORIZATION_PATH,
        "token_endpoint": token_endpoint(config),
        "jwks_uri": config.issuer + JWKS_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": list(_CLIENT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint": revocation_endpoint(config),
        "revocation_endpoint_auth_methods_supported": list(_CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        # Introspection tells one party about another's token: public clients may not ask.
        "introspection_endpoint": introspection_endpoint(config),
        "introspection_endpoint_auth_methods_supported": _CLIENT_AUTH_METHODS[:-1],
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "code_challenge_methods_supported": ["S256"],  # RFC 7636; plain is refused
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),  # RFC 9449 §5.1
        # What RFC 9068 access tokens are signed with, so a resource server can hold its
        # algorithm allow-list from discovery alone (a common extension; ostiary.protect
        # reads it). A key signs only with its own `alg` among these.
        "access_token_signing_alg_values_supported": list(SERVER_SIGNING_ALGORITHMS),
    }


async def jwks_document(ctx: Context) -> dict[str, Any]:
    """The public JWK Set at `jwks_uri`: next, current and still-needed retired keys."""
    return (await ctx.keys.published()).to_dict(private=False)


def openid_configuration(config: ServerConfig) -> dict[str, Any]:
    """The OpenID Connect Discovery 1.0 §3 document at `/.well-known/openid-configuration`.

    Every value is one the server honours; the defaults Discovery assumes for a missing
    value are stated where they would be wrong (request_uri_parameter_supported is true
    unless said otherwise).
    """
    document = authorization_server_metadata(config)
    algorithms = list(ID_TOKEN_ALGORITHMS)
    document.update(
        {
            "userinfo_endpoint": config.issuer + USERINFO_PATH,
            "scopes_supported": ["openid", "profile", "email", "address", "phone"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": algorithms,
            "userinfo_signing_alg_values_supported": algorithms,
            "claims_supported": [*_ID_TOKEN_CLAIMS, *sorted(STANDARD_CLAIMS)],
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": True,  # Core §5.5; acr is not asserted
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }
    )
    # RP-Initiated Logout 1.0 §2.1
    document["end_session_endpoint"] = config.issuer + END_SESSION_PATH
    # Back-Channel Logout 1.0 §2.1: logout tokens carry sub, and sid whenever the ended
    # session had one (every session since revision 0009); so do ID tokens
    document["backchannel_logout_supported"] = True
    document["backchannel_logout_session_supported"] = True
    # Front-Channel Logout 1.0 §3: the logged-out page loads each client's
    # frontchannel_logout_uri with iss and sid (oauth/frontchannel_logout.py)
    document["frontchannel_logout_supported"] = True
    document["frontchannel_logout_session_supported"] = True
    if config.registration_enabled:  # RFC 7591 §3; OpenID Connect Discovery §3
        document["registration_endpoint"] = config.issuer + REGISTRATION_PATH
    return document
