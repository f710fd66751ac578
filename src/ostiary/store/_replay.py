"""`SqlReplayStore`: one-time keys such as a client assertion's `jti` (RFC 7523 §3 item 7)."""

from __future__ import annotations

from sqlalchemy import bindparam

from ._database import Database
from ._schema import replay_entries
from ._text import is_storable

_r = replay_entries.c


class SqlReplayStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # INSERT, or take over an entry that has expired; a live entry makes the statement
        # return no row. The primary key makes concurrent first uses of one key pick a winner.
        insert = db.insert(replay_entries)
        self._first_use = insert.on_conflict_do_update(
            index_elements=[_r.key],
            set_={"expires_at": insert.excluded.expires_at},
            where=_r.expires_at <= bindparam("p_now"),
        ).returning(_r.key)

    async def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        if not is_storable(key):
            return False  # never seen, but never to be accepted either
        params = {"key": key, "expires_at": expires_at, "p_now": now}
        return await self._db.write(
            lambda conn: conn.execute(self._first_use, params).first() is not None
        )
