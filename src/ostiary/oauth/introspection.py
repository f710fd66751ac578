"""Token introspection (RFC 7662), for JWT and opaque access tokens and refresh tokens.

Only an authenticated confidential client may ask (§2.1; a public client has nothing to
authenticate with). A token's `sub` reads as the token itself carries it: for a user's token
issued to a pairwise client, that client's pairwise subject (OpenID Connect Core §8.1), never
the user id (see docs/security.md). Anything not live, including a JWT whose signature still
verifies but which was revoked or whose grant was revoked, is `{"active": false}` and nothing
more (§2.2).
"""

from __future__ import annotations

from typing import Any, Final

from .access_tokens import is_jwt, verify_access_token_jwt
from .client_auth import authenticate_client
from .context import Context
from .errors import InvalidClient, OAuthError
from .metadata import introspection_endpoint
from .models import Client
from .scopes import format_scope
from .subject import subject_for
from .token_hash import hash_token
from .token_request import TokenRequest, TokenResponse, error_response, json_response, parse_form

INACTIVE: Final = {"active": False}


async def handle_introspection_request(req: TokenRequest, ctx: Context) -> TokenResponse:
    """Answer a POST to the introspection endpoint."""
    try:
        form = parse_form(req)
        token = form.require("token")
        client = await authenticate_client(
            form,
            req.authorization,
            ctx,
            endpoint=introspection_endpoint(ctx.config),
            address=req.address,
        )
        if client.is_public:
            raise InvalidClient("public clients may not introspect tokens")
        body = await introspect(token, form.get("token_type_hint"), client, ctx)
    except OAuthError as exc:
        return error_response(exc)
    return json_response(body)


async def introspect(
    token: str, token_type_hint: str | None, client: Client, ctx: Context
) -> dict[str, Any]:
    """The RFC 7662 §2.2 answer for one token, as seen by an authenticated client."""
    if is_jwt(token):
        return await _introspect_jwt(token, ctx)
    token_hash = hash_token(token)
    # §2.1: the hint orders the search; an unknown hint is ignored.
    if token_type_hint == "refresh_token":
        found = await _introspect_refresh(token_hash, client, ctx)
        return found or await _introspect_opaque(token_hash, ctx) or dict(INACTIVE)
    found = await _introspect_opaque(token_hash, ctx)
    return found or await _introspect_refresh(token_hash, client, ctx) or dict(INACTIVE)


async def _introspect_jwt(token: str, ctx: Context) -> dict[str, Any]:
    claims = await verify_access_token_jwt(token, ctx)
    if claims is None:
        return dict(INACTIVE)
    jti = claims["jti"]
    record = await ctx.store.tokens.find_access(jti)
    grant_id = record.grant_id if record is not None else None
    if await ctx.store.tokens.is_revoked(jti, grant_id):
        return dict(INACTIVE)
    # A deleted client takes its tokens with it, and with them the record that tied a JWT to
    # its grant (and client_credentials JWTs are never recorded): ask for the client itself.
    if await ctx.store.clients.get(claims["client_id"]) is None:
        return dict(INACTIVE)
    body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time"):
        if name in claims:
            body[name] = claims[name]
    return body


async def _introspect_opaque(token_hash: str, ctx: Context) -> dict[str, Any] | None:
    record = await ctx.store.tokens.find_access(token_hash)
    if record is None or record.format != "opaque":
        return None
    now = ctx.now()
    if now >= record.expires_at or await ctx.store.tokens.is_revoked(
        record.token_id, record.grant_id
    ):
        return dict(INACTIVE)
    owner = await ctx.store.clients.get(record.client_id)
    if owner is None:
        return dict(INACTIVE)
    # a grant's token is a user's; client_credentials tokens (no grant) name the client
    subject = record.subject
    if record.grant_id is not None:
        subject = subject_for(owner, record.subject, ctx.config)
    body: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "client_id": record.client_id,
        "sub": subject,
        "aud": record.audience[0] if len(record.audience) == 1 else list(record.audience),
        "iss": ctx.config.issuer,
        "exp": record.expires_at,
        "iat": record.issued_at,
    }
    if record.scope:
        body["scope"] = format_scope(record.scope)
    auth_time = record.extra.get("auth_time")
    if isinstance(auth_time, int) and auth_time:
        body["auth_time"] = auth_time
    cnf = record.extra.get("cnf")
    if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str):
        # RFC 9449 §6.2: the resource server must know the token is DPoP-bound
        body["cnf"] = {"jkt": cnf["jkt"]}
        body["token_type"] = "DPoP"
    return body


async def _introspect_refresh(
    token_hash: str, client: Client, ctx: Context
) -> dict[str, Any] | None:
    found = await ctx.store.tokens.find_refresh(token_hash, now=ctx.now())
    # A refresh token is only ever presented by its own client; to anyone else it is not
    # something to describe.
    if found is None or found.client_id != client.client_id:
        return None
    body: dict[str, Any] = {
        "active": True,
        "client_id": found.client_id,
        "iss": ctx.config.issuer,
        "exp": found.expires_at,
        "iat": found.created_at,
    }
    if found.user_id is not None:
        body["sub"] = subject_for(client, found.user_id, ctx.config)
    if found.scope:
        body["scope"] = format_scope(found.scope)
    return body
