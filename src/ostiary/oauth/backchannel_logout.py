"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0), sans-IO: the logout token
owed to a client when a login session it took part in ends, and when to try again.

Ending a session queues one `PendingLogout` per client that was issued a code in it and
registered a `backchannel_logout_uri` (the store does that in the same transaction). A
running server signs each one when it sends it (`logout_token`: a fresh `iat` and `exp` on
every attempt, the same `jti`) and posts it (`server/backchannel.py`), retrying on the
schedule of `retry_delay` until `max_attempts`.

Ending a session also ends the grants made in it (§2.7), in the same transaction: every code
and refresh-token family carrying its `sid` is revoked unless `outlives_session` says its
scope keeps it, and one `session_end_event` per session tells the audit log what happened.
"""

from __future__ import annotations

from typing import Any, Final

from ostiary.jose import jwt

from .context import Context
from .models import AuditEvent, Client, PendingLogout
from .scopes import OFFLINE_ACCESS
from .subject import subject_for

LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE: Final = "logout+jwt"  # §2.4, as the 2023 errata recommend
LOGOUT_TOKEN_TTL: Final = 120
MAX_RETRY_DELAY: Final = 3600
SESSION_END_EVENT: Final = "session.tokens_revoked"


async def logout_token(delivery: PendingLogout, client: Client, ctx: Context) -> str:
    """The signed logout token (§2.4) for `delivery`, naming the person by the `sub` this
    client knows and, when the session had one, its `sid`; never a `nonce` (§2.4)."""
    now = ctx.now()
    claims: dict[str, Any] = {
        "iss": ctx.config.issuer,
        "sub": subject_for(client, delivery.user_id, ctx.config),
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": delivery.jti,
        "events": {LOGOUT_EVENT: {}},
    }
    if delivery.sid is not None:
        claims["sid"] = delivery.sid
    alg = client.oidc.id_token_signed_response_alg  # §2.4: signed as its ID tokens are
    key = await ctx.keys.signing_key(alg)
    return jwt.encode(claims, key, alg=alg, headers={"typ": LOGOUT_TOKEN_TYPE})


def retry_delay(attempts: int, *, first: int, cap: int = MAX_RETRY_DELAY) -> int:
    """Seconds to wait after the `attempts`-th failed attempt: `first`, doubled each time,
    at most `cap`."""
    if attempts < 1 or first < 1:
        raise ValueError("attempts and first must be positive")
    return int(min(cap, first * 2 ** min(attempts - 1, 32)))


def outlives_session(scope: frozenset[str]) -> bool:
    """True when a grant made in a login session stays when the session ends: only with
    `offline_access` (Core §11: access while the person is not signed in). Without it,
    Back-Channel Logout 1.0 §2.7: its refresh tokens are revoked with the session."""
    return OFFLINE_ACCESS in scope


def session_end_event(
    user_id: str,
    *,
    at: int,
    reason: str,
    revoked_grants: int,
    revoked_tokens: int,
    kept_grants: int,
) -> AuditEvent:
    """The audit event of one ended session: why it ended, how many of its grants were
    revoked (and their refresh and recorded access tokens), how many `offline_access` ones
    were kept. Counts only: never a token, a grant id or the session's id."""
    return AuditEvent(
        event=SESSION_END_EVENT,
        at=at,
        user_id=user_id,
        detail={
            "reason": reason,
            "revoked_grants": revoked_grants,
            "revoked_tokens": revoked_tokens,
            "kept_offline_grants": kept_grants,
        },
    )
