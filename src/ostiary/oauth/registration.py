"""Dynamic client registration (RFC 7591) and management (RFC 7592), sans-IO.

`POST /register` takes the client's metadata as JSON, checks every value and answers the
registered client (with its secret and a registration access token, each shown once). The
request needs an initial access token (RFC 7591 §3: `Authorization: Bearer`) unless the server
was told to allow open registration. `GET`, `PUT` and `DELETE /register/{client_id}` read,
replace and delete the client with its registration access token (RFC 7592 §2).

What a registered client may do is bounded: the authorization code grant (and refresh tokens)
only, so every token it obtains carries a user's consent; client_credentials and the legacy
password grant are for clients an operator creates. Software statements are not supported:
a request that carries one is refused (`invalid_software_statement`).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from ostiary.jose import JoseError, jwt
from ostiary.jose.jwk import JWK, JWKSet

from .client_secrets import generate_client_secret, hash_client_secret, verify_client_secret
from .config import ServerConfig
from .context import Context
from .errors import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    OAuthError,
)
from .frontchannel_logout import check_frontchannel_logout_uri
from .logout_uri import check_logout_uri
from .metadata import REGISTRATION_PATH
from .models import ID_TOKEN_ALGORITHMS, AuditEvent, Client, ClientOidc
from .redirect_uri import check_registered_redirect_uri
from .scopes import format_scope, parse_scope
from .subject import sector_of
from .token_hash import hash_token, new_token_value
from .token_request import NO_STORE, error_response

JSON_CONTENT_TYPE: Final = "application/json"
MAX_BODY: Final = 32 * 1024
MAX_URIS: Final = 20
MAX_NAME_LENGTH: Final = 200
DEFAULT_SCOPE: Final = frozenset({"openid", "profile", "email", "address", "phone"})
REGISTRABLE_GRANT_TYPES: Final = ("authorization_code", "refresh_token")
AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
INITIAL_TOKEN_TYPE: Final = "ostiary-initial-access+jwt"
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.IGNORECASE)


class InvalidSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2: software statements are not supported here."""

    error = "invalid_software_statement"
    redirectable = False


@dataclass(frozen=True)
class RegistrationRequest:
    """A request to the registration endpoint, as the server received it."""

    method: str  # POST (register), GET, PUT or DELETE (manage)
    client_id: str | None  # from the path /register/{client_id}; None for POST /register
    authorization: str | None
    content_type: str | None
    body: bytes = b""
    address: str | None = None


@dataclass(frozen=True)
class RegistrationResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))


def registration_endpoint(ctx: Context) -> str:
    return ctx.config.issuer + REGISTRATION_PATH


def issue_initial_access_token(config: ServerConfig, *, ttl: int, now: int) -> str:
    """An initial access token (RFC 7591 §3) that lets its holder register clients until it
    expires: a JWT under the server's registration key, so nothing is stored."""
    if not config.registration_key:
        raise ValueError("the server has no registration key")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    # No iss or aud: the command that prints it may not know the issuer the server was
    # started with (--host, --port); the key, derived from this deployment's secret, is
    # what ties the token to this server, and `typ` to this one use.
    claims = {"iat": now, "exp": now + ttl, "jti": new_token_value(16)}
    key = JWK.from_secret(config.registration_key)
    return jwt.encode(claims, key, alg="HS256", headers={"typ": INITIAL_TOKEN_TYPE})


async def handle_registration_request(
    req: RegistrationRequest, ctx: Context
) -> RegistrationResponse:
    """Answer a request to `/register` or `/register/{client_id}`."""
    try:
        if not ctx.config.registration_enabled:
            raise InvalidRequest("dynamic client registration is turned off on this server")
        if req.client_id is None:
            if req.method != "POST":
                raise InvalidRequest("register with POST")
            return await _register(req, ctx)
        client = await _managed_client(req, ctx)
        if req.method == "GET":
            return RegistrationResponse(200, describe(client, ctx))
        if req.method == "PUT":
            return await _update(req, client, ctx)
        if req.method == "DELETE":
            await ctx.store.clients.delete(client.client_id)
            await _audit(ctx, "client.deleted", client, req)
            return RegistrationResponse(204, None)
        raise InvalidRequest("use GET, PUT or DELETE on a registered client")
    except OAuthError as exc:
        return _error(exc)


def _error(exc: OAuthError) -> RegistrationResponse:
    # RFC 7591 §3.2.2 uses RFC 6749 §5.2's members, whose charset has no `"` or `\`
    body: dict[str, Any] = dict(error_response(exc).body)
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="ostiary", error="{exc.error}"'
    return RegistrationResponse(exc.status, body, headers)


def _bearer(req: RegistrationRequest) -> str | None:
    if req.authorization is None:
        return None
    match = _BEARER.fullmatch(req.authorization)
    if match is None:
        raise InvalidToken("the Authorization header must be Bearer and a token")
    return match.group(1)


def _check_initial_access_token(token: str | None, ctx: Context) -> None:
    if token is None:
        if ctx.config.open_registration:
            return
        raise InvalidToken("registration needs an initial access token (Bearer)")
    if not ctx.config.registration_key:
        raise InvalidToken("this server issues no initial access tokens")
    try:
        if jwt.unverified_header(token).get("typ") != INITIAL_TOKEN_TYPE:
            raise InvalidToken("not an initial access token")
        jwt.decode(
            token,
            JWK.from_secret(ctx.config.registration_key),
            algorithms=["HS256"],
            typ=INITIAL_TOKEN_TYPE,
            now=ctx.now(),
        )
    except JoseError as exc:
        raise InvalidToken("the initial access token is invalid or expired") from exc


async def _managed_client(req: RegistrationRequest, ctx: Context) -> Client:
    """The client of `/register/{client_id}`, if the registration access token is its own.
    An unknown client and a wrong token read the same (RFC 7592 §2.1: 401)."""
    token = _bearer(req)
    client = await ctx.store.clients.get(req.client_id or "")
    expected = client.oidc.registration_token_hash if client is not None else None
    presented = hash_token(token) if token is not None else ""
    if (
        client is None
        or expected is None
        or not hmac.compare_digest(presented.encode(), expected.encode())
    ):
        raise InvalidToken("the registration access token is invalid for this client")
    return client


def _parse_body(req: RegistrationRequest) -> dict[str, Any]:
    media_type = (req.content_type or "").partition(";")[0].strip().lower()
    if media_type != JSON_CONTENT_TYPE:
        raise InvalidRequest("the request body must be application/json")
    if len(req.body) > MAX_BODY:
        raise InvalidRequest("the request body is too large")
    try:
        data = json.loads(req.body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("the request body is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidClientMetadata("the client metadata must be a JSON object")
    if "software_statement" in data:
        raise InvalidSoftwareStatement("software statements are not supported")
    return data


async def _register(req: RegistrationRequest, ctx: Context) -> RegistrationResponse:
    _check_initial_access_token(_bearer(req), ctx)
    metadata = _parse_body(req)
    draft = client_from_metadata(metadata, client_id="c_" + secrets.token_urlsafe(16))
    secret = generate_client_secret() if not draft.is_public else None
    registration_token = new_token_value()
    client = dataclasses.replace(
        draft,
        secret_hash=hash_client_secret(secret) if secret is not None else None,
        created_at=ctx.now(),
        oidc=dataclasses.replace(
            draft.oidc, registration_token_hash=hash_token(registration_token)
        ),
    )
    await ctx.store.clients.add(client)
    await _audit(ctx, "client.registered", client, req)
    body = describe(client, ctx)
    body["registration_access_token"] = registration_token
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: does not expire
    return RegistrationResponse(201, body)


async def _update(req: RegistrationRequest, client: Client, ctx: Context) -> RegistrationResponse:
    metadata = _parse_body(req)
    # RFC 7592 §2.2: the request names the client, and a secret it sends must be its own
    if metadata.pop("client_id", None) != client.client_id:
        raise InvalidRequest("client_id must be the registered client's")
    for name in ("registration_access_token", "registration_client_uri", "client_id_issued_at"):
        metadata.pop(name, None)
    metadata.pop("client_secret_expires_at", None)
    sent_secret = metadata.pop("client_secret", None)
    if sent_secret is not None and (
        not isinstance(sent_secret, str)
        or client.secret_hash is None
        or not verify_client_secret(sent_secret, client.secret_hash)
    ):
        raise InvalidClientMetadata("client_secret does not match the registered one")
    draft = client_from_metadata(metadata, client_id=client.client_id)
    if draft.is_public != client.is_public:
        raise InvalidClientMetadata(
            "token_endpoint_auth_method cannot change between none and a secret or key"
        )
    updated = dataclasses.replace(
        draft,
        secret_hash=client.secret_hash if not draft.is_public else None,
        created_at=client.created_at,
        oidc=dataclasses.replace(
            draft.oidc, registration_token_hash=client.oidc.registration_token_hash
        ),
    )
    if not await ctx.store.clients.update(updated):
        raise InvalidToken("the registration access token is invalid for this client")
    await _audit(ctx, "client.updated", updated, req)
    return RegistrationResponse(200, describe(updated, ctx))


async def _audit(ctx: Context, event: str, client: Client, req: RegistrationRequest) -> None:
    await ctx.store.audit.record(
        AuditEvent(
            event=event,
            at=ctx.now(),
            client_id=client.client_id,
            address=req.address,
            detail={"via": "registration endpoint", "name": client.name},
        )
    )


def describe(client: Client, ctx: Context) -> dict[str, Any]:
    """The registered metadata as RFC 7591 §3.2.1 / RFC 7592 §3 answer it (no secrets)."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": sorted(client.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": client.auth_method,
        "scope": format_scope(client.scopes),
        "id_token_signed_response_alg": client.oidc.id_token_signed_response_alg,
        "subject_type": client.oidc.subject_type,
        "registration_client_uri": f"{registration_endpoint(ctx)}/{client.client_id}",
    }
    if client.oidc.userinfo_signed_response_alg is not None:
        body["userinfo_signed_response_alg"] = client.oidc.userinfo_signed_response_alg
    if client.oidc.post_logout_redirect_uris:
        body["post_logout_redirect_uris"] = list(client.oidc.post_logout_redirect_uris)
    if client.jwks is not None:
        body["jwks"] = dict(client.jwks)
    oidc = client.oidc
    for channel, uri, session_required in (
        ("backchannel", oidc.backchannel_logout_uri, oidc.backchannel_logout_session_required),
        ("frontchannel", oidc.frontchannel_logout_uri, oidc.frontchannel_logout_session_required),
    ):
        if uri is not None:
            body[f"{channel}_logout_uri"] = uri
        if uri is not None or session_required:
            body[f"{channel}_logout_session_required"] = session_required
    return body


def client_from_metadata(metadata: Mapping[str, Any], *, client_id: str) -> Client:
    """A `Client` from RFC 7591 §2 / OpenID Connect Registration §2 metadata; every value
    checked (`InvalidClientMetadata`, `InvalidRedirectUri`). Unknown members are ignored
    (RFC 7591 §2)."""
    grant_types = _strings(metadata, "grant_types", ["authorization_code"])
    if not grant_types or not set(grant_types) <= set(REGISTRABLE_GRANT_TYPES):
        raise InvalidClientMetadata(
            "grant_types may hold only authorization_code and refresh_token"
        )
    if "authorization_code" not in grant_types:
        raise InvalidClientMetadata("refresh_token needs authorization_code")
    response_types = _strings(metadata, "response_types", ["code"])
    if response_types != ["code"]:
        raise InvalidClientMetadata('response_types must be ["code"]')
    redirect_uris = _uris(metadata, "redirect_uris", required=True)
    post_logout = _uris(metadata, "post_logout_redirect_uris", required=False)
    auth_method = _choice(metadata, "token_endpoint_auth_method", AUTH_METHODS, AUTH_METHODS[0])
    jwks = _jwks(metadata.get("jwks"), auth_method)
    if "jwks_uri" in metadata:
        raise InvalidClientMetadata("jwks_uri is not supported: send the keys as jwks")
    name = metadata.get("client_name", "Unnamed application")
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_NAME_LENGTH
        or not name.isprintable()
    ):
        raise InvalidClientMetadata(f"client_name must be 1-{MAX_NAME_LENGTH} printable characters")
    scope_value = metadata.get("scope")
    if scope_value is not None and not isinstance(scope_value, str):
        raise InvalidClientMetadata("scope must be a string of space-separated scopes")
    try:
        scopes = parse_scope(scope_value) if scope_value else DEFAULT_SCOPE
    except InvalidScope as exc:
        raise InvalidClientMetadata(f"scope: {exc.description}") from exc
    id_token_alg = _choice(metadata, "id_token_signed_response_alg", ID_TOKEN_ALGORITHMS, "RS256")
    userinfo_alg = _choice(metadata, "userinfo_signed_response_alg", ID_TOKEN_ALGORITHMS, None)
    subject_type = _choice(metadata, "subject_type", ("public", "pairwise"), "public")
    if "sector_identifier_uri" in metadata:
        raise InvalidClientMetadata(
            "sector_identifier_uri is not supported: pairwise subjects use the redirect host"
        )
    client = Client(
        client_id=client_id,
        name=name.strip(),
        auth_method=auth_method,  # type: ignore[arg-type]  # one of AUTH_METHODS
        redirect_uris=redirect_uris,
        grant_types=frozenset(grant_types),
        scopes=scopes or DEFAULT_SCOPE,
        jwks=jwks,
        oidc=ClientOidc(
            id_token_signed_response_alg=id_token_alg or "RS256",
            userinfo_signed_response_alg=userinfo_alg,
            subject_type="pairwise" if subject_type == "pairwise" else "public",
            post_logout_redirect_uris=post_logout,
        ),
    )
    session_required = metadata.get("backchannel_logout_session_required", False)
    if not isinstance(session_required, bool):
        raise InvalidClientMetadata("backchannel_logout_session_required must be true or false")
    if session_required:
        # Back-Channel Logout 1.0 §2.2: every logout token from a login session carries its
        # sid (and every ID token minted in one), so the requirement is always met
        client = dataclasses.replace(
            client,
            oidc=dataclasses.replace(client.oidc, backchannel_logout_session_required=True),
        )
    uri = _logout_uri(metadata, "backchannel_logout_uri", check_logout_uri)
    client = dataclasses.replace(
        client, oidc=dataclasses.replace(client.oidc, backchannel_logout_uri=uri)
    )
    client = _with_frontchannel_logout(client, metadata)
    if client.oidc.subject_type == "pairwise":
        try:
            sector_of(client)
        except ValueError as exc:
            raise InvalidClientMetadata(str(exc)) from exc
    return client


def _logout_uri(metadata: Mapping[str, Any], name: str, check: Callable[[str], None]) -> str | None:
    """A logout URI is client metadata, not a redirect URI, so a bad one is
    `invalid_client_metadata` (RFC 7591 §3.2.2 keeps `invalid_redirect_uri` for
    redirect_uris; OpenID Connect Registration §3.3)."""
    if name not in metadata:
        return None
    uri = metadata[name]
    if not isinstance(uri, str):
        raise InvalidClientMetadata(f"{name} must be a string")
    try:
        check(uri)
    except ValueError as exc:
        raise InvalidClientMetadata(f"{name}: {exc}") from exc
    return uri


def _with_frontchannel_logout(client: Client, metadata: Mapping[str, Any]) -> Client:
    uri = _logout_uri(metadata, "frontchannel_logout_uri", check_frontchannel_logout_uri)
    session_required = metadata.get("frontchannel_logout_session_required", False)
    if not isinstance(session_required, bool):
        raise InvalidClientMetadata("frontchannel_logout_session_required must be true or false")
    oidc = dataclasses.replace(
        client.oidc,
        frontchannel_logout_uri=uri,
        frontchannel_logout_session_required=session_required,
    )
    return dataclasses.replace(client, oidc=oidc)


def _strings(metadata: Mapping[str, Any], name: str, default: list[str]) -> list[str]:
    value = metadata.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    if len(value) > MAX_URIS:
        raise InvalidClientMetadata(f"{name} has too many values")
    return list(dict.fromkeys(value))


def _uris(metadata: Mapping[str, Any], name: str, *, required: bool) -> tuple[str, ...]:
    uris = _strings(metadata, name, [])
    if required and not uris:
        raise InvalidRedirectUri(f"{name} is required")
    for uri in uris:
        try:
            check_registered_redirect_uri(uri)
        except ValueError as exc:
            raise InvalidRedirectUri(f"{name}: {exc}") from exc
        if urlsplit(uri).scheme.lower() not in ("https", "http"):
            raise InvalidRedirectUri(f"{name} must be https (or http on a loopback address)")
    return tuple(uris)


def _choice(
    metadata: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str | None
) -> str | None:
    value = metadata.get(name, default)
    if value is None:
        return None
    if value not in allowed:
        raise InvalidClientMetadata(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def _jwks(value: Any, auth_method: str | None) -> dict[str, Any] | None:
    if auth_method != "private_key_jwt":
        if value is not None:
            raise InvalidClientMetadata(
                "jwks is only for token_endpoint_auth_method private_key_jwt"
            )
        return None
    if not isinstance(value, dict):
        raise InvalidClientMetadata("private_key_jwt needs jwks with the client's public keys")
    try:
        keys = JWKSet.from_dict(value)
    except JoseError as exc:
        raise InvalidClientMetadata(f"jwks is not usable: {exc}") from exc
    if not len(keys.keys) or any(key.is_private or key.is_symmetric for key in keys.keys):
        raise InvalidClientMetadata("jwks must hold public keys only")
    return keys.to_dict()
