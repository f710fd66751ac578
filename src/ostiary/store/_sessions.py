"""`SqlSessionStore`: login sessions, by the hash of their id."""

from __future__ import annotations

from typing import Final

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from ostiary.oauth.models import LoginSession

from ._database import Database
from ._schema import login_sessions
from ._text import check_storable, is_storable

_s = login_sessions.c
_LIVE: Final = and_(_s.ended_at.is_(None), _s.expires_at > bindparam("p_now"))
_ADD: Final = insert(login_sessions)
_GET: Final = select(login_sessions).where(_s.session_hash == bindparam("p_hash"), _LIVE)
_END: Final = (
    update(login_sessions)
    .where(_s.session_hash == bindparam("p_hash"), _LIVE)
    .values(ended_at=bindparam("p_now"))
    .returning(_s.session_hash)
)
_END_FOR_USER: Final = (
    update(login_sessions)
    .where(_s.user_id == bindparam("p_user"), _LIVE)
    .values(ended_at=bindparam("p_now"))
    .returning(_s.session_hash)
)


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, session: LoginSession) -> None:
        check_storable(session.session_hash, session.user_id)
        values = {
            "session_hash": session.session_hash,
            "user_id": session.user_id,
            "auth_time": session.auth_time,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "ended_at": None,
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

    async def end(self, session_hash: str, *, now: int) -> bool:
        if not is_storable(session_hash):
            return False
        params = {"p_hash": session_hash, "p_now": now}
        row = await self._db.write(lambda conn: conn.execute(_END, params).first())
        return row is not None

    async def end_for_user(self, user_id: str, *, now: int) -> int:
        if not is_storable(user_id):
            return 0
        params = {"p_user": user_id, "p_now": now}
        rows = await self._db.write(lambda conn: conn.execute(_END_FOR_USER, params).all())
        return len(rows)


def _session(row: RowMapping) -> LoginSession:
    return LoginSession(
        session_hash=row["session_hash"],
        user_id=row["user_id"],
        auth_time=int(row["auth_time"]),
        created_at=int(row["created_at"]),
        expires_at=int(row["expires_at"]),
    )
