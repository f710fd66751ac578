"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

Every use spends the presented token and returns a new one of the same family (`grant_id`).
Presenting a token that was already rotated means two parties hold the family: the whole
family is revoked and the audit log says so. The client, scope and resources are checked
before anything changes, so a refused request leaves the family as it was.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import InvalidGrant
from ..id_token import id_token_user_claims, is_openid_request, issue_id_token
from ..models import AuditEvent
from ..resources import audience_for, narrow_resources, registered_apis, scope_for_apis
from ..scopes import parse_scope, require_subset
from ..token_hash import hash_token
from .issuance import GrantRequest, mint_tokens, new_refresh_token, require_grant_type

GRANT_TYPE = "refresh_token"
_INVALID = "the refresh token is invalid, expired or revoked"


async def exchange_refresh_token(request: GrantRequest, ctx: Context) -> dict[str, Any]:
    """Rotate a refresh token: a new access token and a new refresh token of the same family."""
    client = request.client
    form = request.form
    require_grant_type(client, GRANT_TYPE)
    token_hash = hash_token(form.require("refresh_token"))
    requested = parse_scope(form.get("scope"))
    current = await ctx.store.tokens.peek_refresh(token_hash)
    # OAuth 2.1 §4.3.1: a refresh token is bound to the client it was issued to, public
    # clients included; another client's token reads like an unknown one.
    if current is None or current.client_id != client.client_id:
        raise InvalidGrant(_INVALID)
    # RFC 9449 §5: a bound refresh token needs a proof made with its key, every time.
    if current.jkt is not None and current.jkt != request.dpop_jkt:
        raise InvalidGrant("the refresh token is bound to a DPoP key: send a proof made with it")
    # A deleted user's tokens are gone from the store (UserStore.delete ends their grants),
    # so no user lookup is needed here.
    # RFC 6749 §6: the scope may narrow, never widen; RFC 8707 §2.2: resources likewise.
    scope = require_subset(requested, current.scope)
    resources = narrow_resources(form.resources, current.resources)
    token_scope = scope_for_apis(scope, await registered_apis(resources, ctx))
    # The new token keeps the family's full grant: a narrowed request narrows only this
    # access token (RFC 6749 §6, "identical to that of the refresh token included").
    value, replacement = new_refresh_token(
        ctx,
        client=client,
        grant_id=current.grant_id,
        user_id=current.user_id,
        scope=current.scope,
        resources=current.resources,
        auth_time=current.auth_time,
        jkt=current.jkt,
        claims=current.claims,  # OpenID Connect Core §5.5: honoured for the whole grant
        sid=current.sid,
    )
    # The access token is minted first so that the rotation, the access token's record and
    # the audit event are written as one unit: one transaction, and under load one commit.
    issued = await mint_tokens(
        ctx,
        request,
        grant_type=GRANT_TYPE,
        subject=current.user_id or client.client_id,
        user_id=current.user_id,
        scope=token_scope,
        audience=audience_for(resources, ctx.config),
        grant_id=current.grant_id,
        refresh_token=value,
        auth_time=current.auth_time,
        claims=current.claims,
    )
    now = ctx.now()
    rotation = await ctx.store.tokens.rotate_refresh(
        token_hash, replacement, now=now, issuance=issued.issuance
    )
    if rotation.status == "reused":
        revoked = await ctx.store.tokens.revoke_grant(current.grant_id, now=now)
        await ctx.store.audit.record(
            AuditEvent(
                event="refresh.reuse_detected",
                at=now,
                client_id=client.client_id,
                user_id=current.user_id,
                grant_id=current.grant_id,
                address=request.address,
                detail={"family_revoked": True, "revoked_tokens": revoked},
            )
        )
        raise InvalidGrant(_INVALID)
    if rotation.status != "rotated":
        raise InvalidGrant(_INVALID)
    body = issued.body
    if current.user_id is not None and is_openid_request(scope):
        # OpenID Connect Core §12.2: a new ID token, same subject and auth_time, no nonce;
        # the sid of the session the grant was made in, so the client can still match the
        # logout token that session's end brings (Back-Channel Logout 1.0 §2.1)
        body["id_token"] = await issue_id_token(
            ctx,
            client=client,
            user_id=current.user_id,
            auth_time=current.auth_time,
            access_token=body["access_token"],
            claims=await id_token_user_claims(ctx, current.user_id, current.claims),
            sid=current.sid,
        )
    return body
