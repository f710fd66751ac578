"""Token revocation (RFC 7009).

The client revokes its own tokens: a refresh token takes its whole grant with it (every
access and refresh token of the family, §2.1 "SHOULD also invalidate"); an access token, JWT
or opaque, is marked revoked until it would have expired, so introspection reports it
inactive. An unknown, expired or malformed token is answered 200 like a revoked one (§2.2).
"""

from __future__ import annotations

from typing import Final

from .access_tokens import is_jwt, verify_access_token_jwt
from .client_auth import authenticate_client
from .context import Context
from .errors import InvalidRequest, OAuthError
from .metadata import revocation_endpoint
from .models import AuditEvent, Client
from .token_hash import hash_token
from .token_request import TokenRequest, TokenResponse, error_response, json_response, parse_form

_NOT_YOURS: Final = "the token was not issued to this client"


async def handle_revocation_request(req: TokenRequest, ctx: Context) -> TokenResponse:
    """Answer a POST to the revocation endpoint: 200 with an empty object when done."""
    try:
        form = parse_form(req)
        token = form.require("token")
        client = await authenticate_client(
            form,
            req.authorization,
            ctx,
            endpoint=revocation_endpoint(ctx.config),
            address=req.address,
        )
        # §2.1: the hint only orders the search; an unknown hint is ignored.
        if is_jwt(token):
            await _revoke_jwt(token, client, ctx, req.address)
        elif form.get("token_type_hint") == "access_token":
            if not await _revoke_opaque(token, client, ctx, req.address):
                await _revoke_refresh(token, client, ctx, req.address)
        elif not await _revoke_refresh(token, client, ctx, req.address):
            await _revoke_opaque(token, client, ctx, req.address)
    except OAuthError as exc:
        return error_response(exc)
    return json_response({})


async def _revoke_refresh(token: str, client: Client, ctx: Context, address: str | None) -> bool:
    found = await ctx.store.tokens.peek_refresh(hash_token(token))
    if found is None:
        return False
    # §2.1: the server checks the token was issued to the requesting client, and refuses.
    if found.client_id != client.client_id:
        raise InvalidRequest(_NOT_YOURS)
    now = ctx.now()
    revoked = await ctx.store.tokens.revoke_grant(found.grant_id, now=now)
    await _audit(
        ctx,
        client,
        address=address,
        token_type="refresh_token",
        grant_id=found.grant_id,
        revoked=revoked,
        user_id=found.user_id,
    )
    return True


async def _revoke_opaque(token: str, client: Client, ctx: Context, address: str | None) -> bool:
    found = await ctx.store.tokens.find_access(hash_token(token))
    if found is None or found.format != "opaque":
        return False
    if found.client_id != client.client_id:
        raise InvalidRequest(_NOT_YOURS)
    now = ctx.now()
    if now < found.expires_at:
        await ctx.store.tokens.revoke_access(found.token_id, expires_at=found.expires_at, now=now)
        await _audit(
            ctx,
            client,
            address=address,
            token_type="access_token",
            grant_id=found.grant_id,
            revoked=1,
            user_id=None,
        )
    return True


async def _revoke_jwt(token: str, client: Client, ctx: Context, address: str | None) -> None:
    claims = await verify_access_token_jwt(token, ctx)
    if claims is None:
        return
    if claims["client_id"] != client.client_id:
        raise InvalidRequest(_NOT_YOURS)
    record = await ctx.store.tokens.find_access(claims["jti"])
    await ctx.store.tokens.revoke_access(
        claims["jti"], expires_at=int(claims["exp"]), now=ctx.now()
    )
    grant_id = record.grant_id if record is not None else None
    await _audit(
        ctx,
        client,
        address=address,
        token_type="access_token",
        grant_id=grant_id,
        revoked=1,
        user_id=None,
    )


async def _audit(
    ctx: Context,
    client: Client,
    *,
    address: str | None,
    token_type: str,
    grant_id: str | None,
    revoked: int,
    user_id: str | None,
) -> None:
    await ctx.store.audit.record(
        AuditEvent(
            event="token.revoked",
            at=ctx.now(),
            client_id=client.client_id,
            user_id=user_id,
            grant_id=grant_id,
            address=address,
            detail={"token_type": token_type, "revoked_tokens": revoked},
        )
    )
