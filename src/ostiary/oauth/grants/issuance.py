"""What every grant ends with: mint the tokens, store what must be found again, audit, answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..access_tokens import mint_access_token
from ..claims_request import userinfo_claims
from ..context import Context
from ..errors import UnauthorizedClient
from ..models import AuditEvent, ClaimsRequest, Client, Issuance, RefreshToken
from ..scopes import format_scope
from ..subject import subject_for
from ..token_hash import hash_token, new_token_value
from ..token_request import Form


@dataclass(frozen=True, kw_only=True)
class GrantRequest:
    """A token request whose client is authenticated, handed to one grant."""

    form: Form
    client: Client
    address: str | None = None
    dpop_jkt: str | None = None  # the thumbprint of a verified DPoP proof's key (RFC 9449)


def require_grant_type(client: Client, grant_type: str) -> None:
    """RFC 6749 §5.2 `unauthorized_client`: the client may not use this grant type."""
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client may not use the {grant_type} grant")


def may_refresh(client: Client) -> bool:
    """Refresh tokens go to clients registered for the refresh grant, public ones included:
    theirs are bound to the client and rotate on every use (OAuth 2.1 §4.3.1)."""
    return "refresh_token" in client.grant_types


def new_refresh_token(
    ctx: Context,
    *,
    client: Client,
    grant_id: str,
    user_id: str | None,
    scope: frozenset[str],
    resources: Sequence[str],
    auth_time: int = 0,
    jkt: str | None = None,
    claims: ClaimsRequest | None = None,
    sid: str | None = None,
) -> tuple[str, RefreshToken]:
    """A fresh refresh token value and its stored form (by hash), not yet stored."""
    value = new_token_value()
    now = ctx.now()
    token = RefreshToken(
        token_hash=hash_token(value),
        grant_id=grant_id,
        client_id=client.client_id,
        user_id=user_id,
        scope=scope,
        resources=tuple(resources),
        created_at=now,
        expires_at=now + ctx.config.refresh_token_ttl,
        auth_time=auth_time,
        jkt=jkt,
        claims=claims,
        sid=sid,
    )
    return value, token


def refresh_binding(request: GrantRequest) -> str | None:
    """RFC 9449 §5: a public client's refresh token is bound to its DPoP key, since it has no
    other credential; a confidential client's is bound by its authentication already."""
    return request.dpop_jkt if request.client.is_public else None


async def issue_tokens(
    ctx: Context,
    request: GrantRequest,
    *,
    grant_type: str,
    subject: str,
    user_id: str | None,
    scope: frozenset[str],
    audience: Sequence[str],
    grant_id: str | None,
    refresh_token: str | None = None,
    auth_time: int = 0,
    claims: ClaimsRequest | None = None,
) -> dict[str, Any]:
    """Mint the access token, record it and its audit event, and build the RFC 6749 §5.1
    response body.

    `refresh_token` is the value of a refresh token the grant has already stored; `claims`
    the grant's `claims` request, whose UserInfo part the access token carries.
    """
    issued = await mint_tokens(
        ctx,
        request,
        grant_type=grant_type,
        subject=subject,
        user_id=user_id,
        scope=scope,
        audience=audience,
        grant_id=grant_id,
        refresh_token=refresh_token,
        auth_time=auth_time,
        claims=claims,
    )
    if issued.issuance.access is not None:
        await ctx.store.tokens.add_access(issued.issuance.access)
    await ctx.store.audit.record(issued.issuance.event)
    return issued.body


@dataclass(frozen=True, kw_only=True)
class IssuedTokens:
    """Tokens minted but not yet recorded: the response body, and what must be written
    before it is sent."""

    body: dict[str, Any]
    issuance: Issuance


async def mint_tokens(
    ctx: Context,
    request: GrantRequest,
    *,
    grant_type: str,
    subject: str,
    user_id: str | None,
    scope: frozenset[str],
    audience: Sequence[str],
    grant_id: str | None,
    refresh_token: str | None = None,
    auth_time: int = 0,
    claims: ClaimsRequest | None = None,
) -> IssuedTokens:
    """`issue_tokens` writing nothing: for a grant that records the access token and the
    audit event in one unit of work with its own change (the refresh grant's rotation)."""
    client = request.client
    access = await mint_access_token(
        ctx,
        client=client,
        subject=subject,
        scope=scope,
        audience=audience,
        grant_id=grant_id,
        auth_time=auth_time or None,
        jkt=request.dpop_jkt,
        # A JWT passes through the client, which can read it: a pairwise client must find
        # there the subject it knows, never the user id (see docs/security.md).
        sub=None if user_id is None else subject_for(client, user_id, ctx.config),
        userinfo_claims=userinfo_claims(claims),
    )
    detail: Mapping[str, Any] = {
        "grant_type": grant_type,
        "scope": format_scope(scope),
        "audience": list(access.audience),
        "format": access.format,
        "refresh_token": refresh_token is not None,
        "dpop": request.dpop_jkt is not None,
    }
    event = AuditEvent(
        event="token.issued",
        at=access.issued_at,
        client_id=client.client_id,
        user_id=user_id,
        grant_id=grant_id,
        address=request.address,
        detail=detail,
    )
    body: dict[str, Any] = {
        "access_token": access.value,
        # RFC 9449 §5: a DPoP-bound token says so
        "token_type": "DPoP" if request.dpop_jkt is not None else "Bearer",
        "expires_in": access.expires_in,
    }
    if scope:
        body["scope"] = format_scope(scope)
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return IssuedTokens(body=body, issuance=Issuance(access=access.record, event=event))
