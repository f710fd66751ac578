"""Finding what an issuer publishes from its URL alone: RFC 8414 and OpenID Connect Discovery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from ._fetch import FetchError, fetch_json

# Signature algorithms an access token may use: never HMAC (a resource server holding the
# issuer's secret could mint tokens) and never `none`.
ASYMMETRIC_ALGORITHMS: Final = (
    "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "Ed448",
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class IssuerMetadata:
    """What a resource server needs from the authorization server's metadata."""

    issuer: str
    jwks_uri: str
    introspection_endpoint: str | None = None
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS  # for access tokens
    dpop_algorithms: tuple[str, ...] = ()


def metadata_urls(issuer: str) -> tuple[str, ...]:
    """Where the metadata may be: RFC 8414 §3.1 inserts the well-known path before the
    issuer's path; OpenID Connect Discovery §4 appends it."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}"
    return (
        f"{base}/.well-known/oauth-authorization-server{path}",
        f"{base}{path}/.well-known/openid-configuration",
    )


def check_issuer_url(issuer: str) -> None:
    """`ValueError` unless `issuer` is an https URL (http only for a loopback host), with no
    query or fragment (RFC 8414 §2)."""
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError("issuer must be an https URL (http only for localhost)")
    if not parts.hostname or parts.query or parts.fragment or "#" in issuer:
        raise ValueError("issuer must be a URL with a host and no query or fragment")


async def discover(issuer: str, http: httpx.AsyncClient) -> IssuerMetadata:
    """The issuer's metadata; `FetchError` when no well-known document names this issuer."""
    problems: list[str] = []
    for url in metadata_urls(issuer):
        try:
            document, _ = await fetch_json(http, url)
        except FetchError as exc:
            problems.append(str(exc))
            continue
        # RFC 8414 §3.3: the document's issuer must be identical to the one asked about,
        # or an attacker's metadata could be passed off as the real issuer's.
        if document.get("issuer") != issuer:
            problems.append(f"{url} names another issuer")
            continue
        return parse_metadata(issuer, document)
    raise FetchError("no usable issuer metadata: " + "; ".join(problems))


def parse_metadata(issuer: str, document: Mapping[str, Any]) -> IssuerMetadata:
    """Check and keep the members used; `FetchError` when something needed is wrong."""
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not _same_security(jwks_uri, issuer):
        raise FetchError("the issuer metadata has no usable jwks_uri")
    introspection = document.get("introspection_endpoint")
    if introspection is not None and (
        not isinstance(introspection, str) or not _same_security(introspection, issuer)
    ):
        introspection = None
    return IssuerMetadata(
        issuer=issuer,
        jwks_uri=jwks_uri,
        introspection_endpoint=introspection,
        algorithms=_signing_algorithms(document),
        dpop_algorithms=_allowed(document.get("dpop_signing_alg_values_supported")),
    )


def _signing_algorithms(document: Mapping[str, Any]) -> tuple[str, ...]:
    # No registered member names the access-token algorithms (RFC 9068 leaves it out); an
    # issuer that signs them with its ID token keys lists these, and Ostiary says both.
    named = _allowed(document.get("access_token_signing_alg_values_supported")) + _allowed(
        document.get("id_token_signing_alg_values_supported")
    )
    return tuple(dict.fromkeys(named)) or ASYMMETRIC_ALGORITHMS


def _allowed(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v in ASYMMETRIC_ALGORITHMS)


def _same_security(url: str, issuer: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or parts.fragment:
        return False
    # an https issuer's keys never come over plain http
    return parts.scheme == "https" or (parts.scheme == "http" and issuer.startswith("http:"))
