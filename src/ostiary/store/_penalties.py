"""`SqlPenaltyStore`: the penalty of each key past a shared limit, changed one key at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from ostiary.oauth.rate_limits import Penalty

from ._database import Database
from ._schema import rate_penalties
from ._text import check_storable, is_storable

_p = rate_penalties.c
_COLUMNS: Final = (_p.strikes, _p.struck_at, _p.until, _p.forget_at)
# FOR UPDATE: on PostgreSQL the row stays locked until the change is written, so two
# processes that change one key at once take turns (SQLite's BEGIN IMMEDIATE already does).
_LOCKED: Final = select(*_COLUMNS).where(_p.key == bindparam("p_key")).with_for_update()
_PURGE: Final = delete(rate_penalties).where(_p.forget_at <= bindparam("p_now"))
_FORGET: Final = delete(rate_penalties).where(_p.key == bindparam("p_key"))
PURGE_EVERY: Final = 60  # seconds between purges of forgotten rows, per process


class SqlPenaltyStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        insert = db.insert(rate_penalties)
        # a placeholder row (already forgotten) that the SELECT ... FOR UPDATE can lock
        self._placeholder = insert.values(
            key=bindparam("p_key"), strikes=0, struck_at=0, until=0, forget_at=0
        ).on_conflict_do_nothing(index_elements=[_p.key])
        self._put = insert.on_conflict_do_update(
            index_elements=[_p.key],
            set_={
                "strikes": insert.excluded.strikes,
                "struck_at": insert.excluded.struck_at,
                "until": insert.excluded.until,
                "forget_at": insert.excluded.forget_at,
            },
        )
        self._purged_at = 0

    async def update(
        self, key: str, change: Callable[[Penalty | None], Penalty], *, now: int
    ) -> Penalty:
        check_storable(key)

        def work(conn: Connection) -> Penalty:
            conn.execute(self._placeholder, {"p_key": key})
            row = conn.execute(_LOCKED, {"p_key": key}).one_or_none()
            current = None
            if row is not None and row.forget_at > now:
                current = Penalty(
                    strikes=int(row.strikes),
                    struck_at=int(row.struck_at),
                    until=int(row.until),
                    forget_at=int(row.forget_at),
                )
            penalty = change(current)
            if penalty != current:
                conn.execute(
                    self._put,
                    {
                        "key": key,
                        "strikes": penalty.strikes,
                        "struck_at": penalty.struck_at,
                        "until": penalty.until,
                        "forget_at": penalty.forget_at,
                    },
                )
            return penalty

        return await self._db.write(work)

    async def active(self, prefix: str, *, now: int, waiting: bool = False) -> dict[str, Penalty]:
        if now - self._purged_at >= PURGE_EVERY:
            # its own short transaction, which holds no other lock: it never deadlocks with
            # an update (each holds one row)
            self._purged_at = now
            await self._db.write(lambda conn: conn.execute(_PURGE, {"p_now": now}))
        query = select(_p.key, *_COLUMNS).where(
            (_p.until if waiting else _p.forget_at) > now,
            _p.key.startswith(prefix, autoescape=True),
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {
            row.key: Penalty(
                strikes=int(row.strikes),
                struck_at=int(row.struck_at),
                until=int(row.until),
                forget_at=int(row.forget_at),
            )
            for row in rows
        }

    async def forget(self, key: str) -> None:
        if is_storable(key):
            await self._db.write(lambda conn: conn.execute(_FORGET, {"p_key": key}))
