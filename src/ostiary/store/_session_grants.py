"""What ending login sessions does to the grants made in them (Back-Channel Logout 1.0
§2.7), inside the transaction that ends them: `revoke_session_grants`.

A grant belongs to the session whose `sid` its code and refresh tokens carry (every rotation
keeps it). Its code is looked at as well as its refresh tokens: a code redeemed just before
the session ended may not have its first refresh token stored yet, and the grant must be
revoked all the same. Revoking is what `SqlTokenStore.revoke_grant` does to a family: the
grant is recorded in `revoked_grants` (which every read of a refresh or access token
checks, so a token written by a request racing this transaction is dead too), its refresh
tokens are marked revoked and its recorded access tokens listed as revoked; a code not yet
redeemed is deleted, as `revoke_for_user_client` does, so it is never redeemed after. A
redeemed one stays: its replay must still be told apart (RFC 6749 §4.1.2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import bindparam, delete, exists, insert, select, union, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import BindParameter

from ostiary.oauth.backchannel_logout import outlives_session, session_end_event

from ._audit import audit_values
from ._database import Database
from ._schema import (
    access_tokens,
    audit_events,
    authorization_codes,
    refresh_tokens,
    revoked_access_tokens,
    revoked_grants,
    words_set,
)
from ._tokens import record_revoked_grants

_r = refresh_tokens.c
_k = authorization_codes.c
_a = access_tokens.c
_SIDS: Final[BindParameter[str]] = bindparam("p_sids", expanding=True)
_GRANT_IDS: Final[BindParameter[str]] = bindparam("p_grants", expanding=True)
_MADE_IN: Final = union(
    select(_r.sid, _r.grant_id, _r.scope).where(_r.sid.in_(_SIDS)),
    select(_k.sid, _k.grant_id, _k.scope).where(_k.sid.in_(_SIDS)),
).subquery()
# Grants revoked already (a reused refresh token, a replayed code, revoke-consent) are over.
_GRANTS: Final = select(_MADE_IN.c.sid, _MADE_IN.c.grant_id, _MADE_IN.c.scope).where(
    ~exists().where(revoked_grants.c.grant_id == _MADE_IN.c.grant_id)
)
_REVOKE_REFRESH: Final = (
    update(refresh_tokens)
    .where(_r.grant_id.in_(_GRANT_IDS), _r.state != "revoked")
    .values(state="revoked", changed_at=bindparam("p_now"))
    .returning(_r.grant_id)
)
# by sid first: its index finds the few rows (codes have no index on grant_id)
_DELETE_CODES: Final = delete(authorization_codes).where(
    _k.sid.in_(_SIDS), _k.grant_id.in_(_GRANT_IDS), _k.used_at.is_(None)
)
_ACCESS: Final = select(_a.grant_id, _a.token_id, _a.expires_at).where(
    _a.grant_id.in_(_GRANT_IDS),
    ~exists().where(revoked_access_tokens.c.token_id == _a.token_id),
)
_AUDIT: Final = insert(audit_events)


def revoke_session_grants(
    db: Database, conn: Connection, ended: Sequence[Row[Any]], *, now: int, reason: str
) -> list[dict[str, Any]]:
    """Revoke the grants made in the `ended` sessions (rows with `user_id` and `sid`) that
    do not outlive them, and write one audit event per session; return the events' values,
    for their log lines once the transaction is committed."""
    sids = [row.sid for row in ended if row.sid is not None]
    grants: dict[str, tuple[str, bool]] = {}  # grant_id -> (sid, kept)
    if sids:
        for sid, grant_id, scope in conn.execute(_GRANTS, {"p_sids": sids}).all():
            grants[grant_id] = (sid, outlives_session(words_set(scope)))
    revoked = [grant_id for grant_id, (_, kept) in grants.items() if not kept]
    tokens: Counter[str] = Counter()  # sid -> refresh and access tokens revoked
    if revoked:
        record_revoked_grants(db, conn, revoked, revoked_at=now)
        params = {"p_sids": sids, "p_grants": revoked, "p_now": now}
        conn.execute(_DELETE_CODES, params)
        for (grant_id,) in conn.execute(_REVOKE_REFRESH, params).all():
            tokens[grants[grant_id][0]] += 1
        access = conn.execute(_ACCESS, params).all()
        if access:
            listed = db.insert(revoked_access_tokens).on_conflict_do_nothing(
                index_elements=[revoked_access_tokens.c.token_id]
            )
            rows = [{"token_id": row.token_id, "expires_at": row.expires_at} for row in access]
            conn.execute(listed, rows)
            tokens.update(grants[row.grant_id][0] for row in access)
    counted: Counter[tuple[str, bool]] = Counter(grants.values())
    events = [
        session_end_event(
            row.user_id,
            at=now,
            reason=reason,
            revoked_grants=counted[row.sid, False],
            revoked_tokens=tokens[row.sid],
            kept_grants=counted[row.sid, True],
        )
        for row in ended
    ]
    values = [audit_values(event) for event in events]
    conn.execute(
        _AUDIT, [v | {"detail": dict(e.detail)} for v, e in zip(values, events, strict=True)]
    )
    return values
