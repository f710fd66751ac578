"""`SqlReplayStore`: one-time keys such as a client assertion's `jti` (RFC 7523 §3 item 7)."""

from __future__ import annotations

from ._database import Database
from ._schema import replay_entries


class SqlReplayStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        # INSERT, or take over an entry that has expired; a live entry makes the statement
        # return no row. The primary key makes concurrent first uses of one key pick a winner.
        insert = self._db.insert(replay_entries).values(key=key, expires_at=expires_at)
        statement = insert.on_conflict_do_update(
            index_elements=[replay_entries.c.key],
            set_={"expires_at": insert.excluded.expires_at},
            where=replay_entries.c.expires_at <= now,
        ).returning(replay_entries.c.key)
        async with self._db.write() as conn:
            return (await conn.execute(statement)).first() is not None
