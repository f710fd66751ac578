"""Remembered consent: per user and client, the set of scopes the user has approved.

A user is asked again only when a request wants something outside that set; approving adds
to it, and revoking forgets it (and ends the client's grants for the user) so the next
request asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .claims import claims_for_scope
from .context import Context
from .models import AuditEvent, Consent
from .scopes import format_scope


async def has_consent(
    user_id: str,
    client_id: str,
    scope: frozenset[str],
    *,
    ctx: Context,
    claims: frozenset[str] = frozenset(),
) -> bool:
    """True when the user has already approved `scope` (all of it) for this client, and each
    of `claims` (asked for one by one) on its own or through an approved scope.

    A user who never approved the client is asked even for an empty scope: the client would
    still act on their behalf.
    """
    consent = await ctx.store.consents.get(user_id, client_id)
    if consent is None or not scope <= consent.scope:
        return False
    return claims <= consent.claims | claims_for_scope(consent.scope)


async def record_consent(
    user_id: str,
    client_id: str,
    scope: frozenset[str],
    *,
    ctx: Context,
    claims: frozenset[str] = frozenset(),
) -> Consent:
    """Remember that the user approved `scope` (and `claims`, asked for one by one) for this
    client, on top of earlier approvals.

    Writes a `consent.granted` audit event when something new was approved.
    """
    previous = await ctx.store.consents.get(user_id, client_id)
    if previous is not None and scope <= previous.scope and claims <= previous.claims:
        return previous
    merged = scope | (previous.scope if previous is not None else frozenset())
    merged_claims = claims | (previous.claims if previous is not None else frozenset())
    consent = Consent(
        user_id=user_id,
        client_id=client_id,
        scope=merged,
        granted_at=ctx.now(),
        claims=merged_claims,
    )
    await ctx.store.consents.put(consent)
    await ctx.store.audit.record(
        AuditEvent(
            event="consent.granted",
            at=consent.granted_at,
            client_id=client_id,
            user_id=user_id,
            detail=consent_detail(scope, claims, remembered=True),
        )
    )
    return consent


@dataclass(frozen=True, kw_only=True)
class ConsentRevocation:
    """What `revoke_consent` ended: whether a consent was remembered, and how many tokens of
    the user at the client were revoked."""

    consent_revoked: bool
    revoked_tokens: int


async def revoke_consent(user_id: str, client_id: str, *, ctx: Context) -> ConsentRevocation:
    """Forget the user's approvals for this client and revoke every grant the client holds
    for the user, so its refresh tokens fail and introspection reads its tokens inactive.

    A JWT access token a resource server checks on its own stays valid until it expires (its
    lifetime is short for that reason). Writes a `consent.revoked` audit event when anything
    was revoked.
    """
    consent_revoked = await ctx.store.consents.revoke(user_id, client_id)
    now = ctx.now()
    # Tokens go even without a remembered consent: a one-time approval (remember=False) or
    # the password grant still issued them on the user's behalf.
    revoked_tokens = await ctx.store.tokens.revoke_for_user_client(user_id, client_id, now=now)
    revocation = ConsentRevocation(consent_revoked=consent_revoked, revoked_tokens=revoked_tokens)
    if consent_revoked or revoked_tokens:
        await ctx.store.audit.record(
            AuditEvent(
                event="consent.revoked",
                at=now,
                client_id=client_id,
                user_id=user_id,
                detail={"consent_revoked": consent_revoked, "revoked_tokens": revoked_tokens},
            )
        )
    return revocation


def consent_detail(
    scope: frozenset[str], claims: frozenset[str], *, remembered: bool
) -> dict[str, Any]:
    """The audit detail of a `consent.granted` event."""
    detail: dict[str, Any] = {"scope": format_scope(scope), "remembered": remembered}
    if claims:
        detail["claims"] = sorted(claims)
    return detail
