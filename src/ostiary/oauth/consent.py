"""Remembered consent: per user and client, the set of scopes the user has approved.

A user is asked again only when a request wants something outside that set; approving adds
to it, and revoking forgets it so the next request asks again.
"""

from __future__ import annotations

from .context import Context
from .models import AuditEvent, Consent
from .scopes import format_scope


async def has_consent(user_id: str, client_id: str, scope: frozenset[str], *, ctx: Context) -> bool:
    """True when the user has already approved `scope` (all of it) for this client.

    A user who never approved the client is asked even for an empty scope: the client would
    still act on their behalf.
    """
    consent = await ctx.store.consents.get(user_id, client_id)
    return consent is not None and scope <= consent.scope


async def record_consent(
    user_id: str, client_id: str, scope: frozenset[str], *, ctx: Context
) -> Consent:
    """Remember that the user approved `scope` for this client, on top of earlier approvals.

    Writes a `consent.granted` audit event when something new was approved.
    """
    previous = await ctx.store.consents.get(user_id, client_id)
    if previous is not None and scope <= previous.scope:
        return previous
    merged = scope | (previous.scope if previous is not None else frozenset())
    consent = Consent(user_id=user_id, client_id=client_id, scope=merged, granted_at=ctx.now())
    await ctx.store.consents.put(consent)
    await ctx.store.audit.record(
        AuditEvent(
            event="consent.granted",
            at=consent.granted_at,
            client_id=client_id,
            user_id=user_id,
            detail={"scope": format_scope(scope), "remembered": True},
        )
    )
    return consent


async def revoke_consent(user_id: str, client_id: str, *, ctx: Context) -> bool:
    """Forget the user's approvals for this client; False if there were none.

    Tokens already issued stay valid until they expire or are revoked on their own.
    """
    revoked = await ctx.store.consents.revoke(user_id, client_id)
    if revoked:
        await ctx.store.audit.record(
            AuditEvent(event="consent.revoked", at=ctx.now(), client_id=client_id, user_id=user_id)
        )
    return revoked
