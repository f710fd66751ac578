"""`SqlSessionStore`: login sessions, by the hash of their id; which clients each reached;
and, written in the transaction that ends a session, the logout tokens it owes them and the
revocation of the grants made in it that do not outlive it (`_session_grants.py`)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row, RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import LoginSession

from ._audit import log_audit_line
from ._database import Database
from ._schema import clients, login_sessions, logout_deliveries, session_clients
from ._session_grants import revoke_session_grants
from ._text import check_storable, is_storable

_s = login_sessions.c
_j = session_clients.c
_LIVE: Final = and_(_s.ended_at.is_(None), _s.expires_at > bindparam("p_now"))
_ADD: Final = insert(login_sessions)
_GET: Final = select(login_sessions).where(_s.session_hash == bindparam("p_hash"), _LIVE)
_ENDED: Final = (_s.session_hash, _s.user_id, _s.sid)
_END: Final = (
    update(login_sessions)
    .where(_s.session_hash == bindparam("p_hash"), _LIVE)
    .values(ended_at=bindparam("p_now"))
    .returning(*_ENDED)
)
_END_FOR_USER: Final = (
    update(login_sessions)
    .where(_s.user_id == bindparam("p_user"), _LIVE)
    .values(ended_at=bindparam("p_now"))
    .returning(*_ENDED)
)
# Expired but never ended: the sweeper's share. On PostgreSQL, sweepers of several processes
# skip each other's rows, and the UPDATE re-checks `ended_at IS NULL` on each row it ends, so
# only one ends (and queues for) each session.
_EXPIRED: Final = (
    select(_s.session_hash)
    .where(_s.ended_at.is_(None), _s.expires_at <= bindparam("p_now"))
    .order_by(_s.expires_at)
    .limit(bindparam("p_limit"))
    .with_for_update(skip_locked=True)
)
_END_EXPIRED: Final = (
    update(login_sessions)
    .where(_s.session_hash.in_(_EXPIRED.scalar_subquery()), _s.ended_at.is_(None))
    .values(ended_at=bindparam("p_now"))
    .returning(*_ENDED)
)
# Only clients that registered a back-channel URI are owed a logout token (§2.2).
_LISTENING: Final = (
    select(_j.session_hash, _j.client_id)
    .join(clients, clients.c.client_id == _j.client_id)
    .where(
        _j.session_hash.in_(bindparam("p_hashes", expanding=True)),
        clients.c.oidc["backchannel_logout_uri"].as_string().is_not(None),
    )
    .order_by(_j.joined_at)
)
_QUEUE: Final = insert(logout_deliveries)
# a deleted client's rows go with it (ON DELETE CASCADE)
_CLIENTS_OF: Final = (
    select(_j.client_id)
    .where(_j.session_hash == bindparam("p_hash"))
    .order_by(_j.joined_at, _j.client_id)
)


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._join = db.insert(session_clients).on_conflict_do_nothing(
            index_elements=[_j.session_hash, _j.client_id]
        )

    async def add(self, session: LoginSession) -> None:
        check_storable(session.session_hash, session.user_id, session.sid)
        values = {
            "session_hash": session.session_hash,
            "user_id": session.user_id,
            "auth_time": session.auth_time,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "ended_at": None,
            "sid": session.sid,
        }
        try:
            await self._db.write(lambda conn: conn.execute(_ADD, values))
        except IntegrityError:
            raise ValueError("session exists, or names an unknown user") from None

    async def get(self, session_hash: str, *, now: int) -> LoginSession | None:
        if not is_storable(session_hash):
            return None
        params = {"p_hash": session_hash, "p_now": now}
        row = await self._db.read(lambda conn: conn.execute(_GET, params).mappings().first())
        return None if row is None else _session(row)

    async def join(self, session_hash: str, client_id: str, *, now: int) -> None:
        check_storable(session_hash, client_id)
        values = {"session_hash": session_hash, "client_id": client_id, "joined_at": now}
        try:
            await self._db.write(lambda conn: conn.execute(self._join, values))
        except IntegrityError:
            raise ValueError("no such session or client") from None

    async def clients_of(self, session_hash: str) -> Sequence[str]:
        if not is_storable(session_hash):
            return []
        params = {"p_hash": session_hash}
        rows = await self._db.read(lambda conn: conn.execute(_CLIENTS_OF, params).all())
        return [row.client_id for row in rows]

    async def end(self, session_hash: str, *, now: int, reason: str = "logout") -> bool:
        if not is_storable(session_hash):
            return False
        params = {"p_hash": session_hash, "p_now": now}
        return await self._end(lambda conn: conn.execute(_END, params).all(), now, reason) > 0

    async def end_for_user(self, user_id: str, *, now: int, reason: str = "sign-out") -> int:
        if not is_storable(user_id):
            return 0
        params = {"p_user": user_id, "p_now": now}
        return await self._end(lambda conn: conn.execute(_END_FOR_USER, params).all(), now, reason)

    async def end_expired(self, *, now: int, limit: int = 100) -> int:
        params = {"p_now": now, "p_limit": limit}
        return await self._end(
            lambda conn: conn.execute(_END_EXPIRED, params).all(), now, "expired", bulk=True
        )

    async def _end(
        self,
        ending: Callable[[Connection], Sequence[Row[Any]]],
        now: int,
        reason: str,
        *,
        bulk: bool = False,
    ) -> int:
        """End the sessions `ending` marks ended, in one transaction with what that owes:
        logout tokens queued, grants revoked, audit events; return how many ended."""

        def work(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
            ended = ending(conn)
            if not ended:
                return 0, []
            _queue_logouts(conn, ended, now=now, reason=reason)
            return len(ended), revoke_session_grants(self._db, conn, ended, now=now, reason=reason)

        count, events = await self._db.write(work, bulk=bulk)
        for values in events:
            log_audit_line(values)
        return count


def _queue_logouts(conn: Connection, ended: Sequence[Row[Any]], *, now: int, reason: str) -> int:
    """Queue one delivery per session and listening client; return how many sessions ended."""
    if not ended:
        return 0
    sessions = {row.session_hash: row for row in ended}
    listening = conn.execute(_LISTENING, {"p_hashes": list(sessions)}).all()
    rows = [
        {
            "client_id": client_id,
            "user_id": sessions[session_hash].user_id,
            "sid": sessions[session_hash].sid,
            # Back-Channel Logout §2.4 jti: random, and the same on every attempt
            "jti": secrets.token_urlsafe(16),
            "reason": reason,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for session_hash, client_id in listening
    ]
    if rows:
        conn.execute(_QUEUE, rows)
    return len(sessions)


def _session(row: RowMapping) -> LoginSession:
    return LoginSession(
        session_hash=row["session_hash"],
        user_id=row["user_id"],
        auth_time=int(row["auth_time"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
        sid=row["sid"],
    )
