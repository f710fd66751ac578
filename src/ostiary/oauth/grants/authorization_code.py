"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).

Everything about the request is checked against a read-only look at the code first, so a
refused request leaves the code redeemable by its rightful client. Only then is the code
consumed, atomically; a code redeemed twice revokes every token its first redemption produced
(RFC 6749 §4.1.2, RFC 9700 §4.2.4).
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import InvalidGrant, InvalidRequest
from ..id_token import id_token_user_claims, is_openid_request, issue_id_token
from ..models import AuditEvent, AuthorizationCode, Client
from ..pkce import verify_code_verifier
from ..resources import audience_for, narrow_resources, registered_apis, scope_for_apis
from ..token_hash import hash_token
from .issuance import (
    GrantRequest,
    issue_tokens,
    may_refresh,
    new_refresh_token,
    refresh_binding,
    require_grant_type,
)

GRANT_TYPE = "authorization_code"


async def exchange_authorization_code(request: GrantRequest, ctx: Context) -> dict[str, Any]:
    """Redeem a code for an access token (and a refresh token when the client may have one)."""
    client = request.client
    form = request.form
    require_grant_type(client, GRANT_TYPE)
    code_value = form.require("code")
    code_verifier = form.require("code_verifier")  # PKCE is required for every client
    code_hash = hash_token(code_value)
    code = await ctx.store.codes.peek(code_hash)
    # RFC 6749 §4.1.3: the code must have been issued to the authenticated client; an unknown
    # code and another client's code read the same.
    if code is None or code.client_id != client.client_id:
        raise InvalidGrant("the authorization code is invalid, expired or was already used")
    check_redirect_uri(form.get("redirect_uri"), code, client)
    verify_code_verifier(code_verifier, code.code_challenge)  # RFC 7636 §4.6
    resources = narrow_resources(form.resources, code.resources)  # RFC 8707 §2.2
    # The code keeps its whole scope (an ID token needs `openid`); the access token for an
    # API carries only that API's scopes. An API deleted since the authorization is gone.
    token_scope = scope_for_apis(code.scope, await registered_apis(resources, ctx))
    now = ctx.now()
    consumption = await ctx.store.codes.consume(code_hash, now=now)
    if consumption.replayed:
        revoked = await ctx.store.tokens.revoke_grant(code.grant_id, now=now)
        await ctx.store.audit.record(
            AuditEvent(
                event="code.replay_detected",
                at=now,
                client_id=client.client_id,
                user_id=code.user_id,
                grant_id=code.grant_id,
                address=request.address,
                detail={"revoked_tokens": revoked, "grant_revoked": True},
            )
        )
        raise InvalidGrant("the authorization code is invalid, expired or was already used")
    redeemed = consumption.code
    if redeemed is None:
        raise InvalidGrant("the authorization code is invalid, expired or was already used")
    refresh_value = None
    if may_refresh(client):
        refresh_value, refresh = new_refresh_token(
            ctx,
            client=client,
            grant_id=redeemed.grant_id,
            user_id=redeemed.user_id,
            scope=redeemed.scope,
            resources=redeemed.resources,
            auth_time=redeemed.auth_time,
            jkt=refresh_binding(request),
            claims=redeemed.claims,
            sid=redeemed.sid,
        )
        await ctx.store.tokens.add_refresh(refresh)
    body = await issue_tokens(
        ctx,
        request,
        grant_type=GRANT_TYPE,
        subject=redeemed.user_id,
        user_id=redeemed.user_id,
        scope=token_scope,
        audience=audience_for(resources, ctx.config),
        grant_id=redeemed.grant_id,
        refresh_token=refresh_value,
        auth_time=redeemed.auth_time,
        claims=redeemed.claims,
    )
    if is_openid_request(redeemed.scope):  # OpenID Connect Core §3.1.3.3
        body["id_token"] = await issue_id_token(
            ctx,
            client=client,
            user_id=redeemed.user_id,
            auth_time=redeemed.auth_time,
            nonce=redeemed.nonce,
            access_token=body["access_token"],
            claims=await id_token_user_claims(ctx, redeemed.user_id, redeemed.claims),
            sid=redeemed.sid,
        )
    return body


def check_redirect_uri(redirect_uri: str | None, code: AuthorizationCode, client: Client) -> None:
    """RFC 6749 §4.1.3: the token request's redirect_uri is identical to the authorization
    request's. It may be left out only where the authorization request could leave it out too:
    when the client registered exactly that one URI."""
    if redirect_uri is None:
        if client.redirect_uris != (code.redirect_uri,):
            raise InvalidRequest("redirect_uri is required")
        return
    if redirect_uri != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
