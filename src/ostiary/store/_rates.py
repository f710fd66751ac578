"""`SqlRateCounters`: requests per key per fixed window, added in batches by every process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sqlalchemy import bindparam, delete
from sqlalchemy.engine import Connection

from ._database import Database
from ._schema import rate_counters
from ._text import is_storable

_r = rate_counters.c
_PURGE: Final = delete(rate_counters).where(_r.expires_at <= bindparam("p_now"))


class SqlRateCounters:
    def __init__(self, db: Database) -> None:
        self._db = db
        insert = db.insert(rate_counters)
        # One statement per key adds and reads back the total of every process at once.
        self._add = insert.on_conflict_do_update(
            index_elements=[_r.key, _r.window], set_={"count": _r.count + insert.excluded.count}
        ).returning(_r.count)

    async def add(
        self, window: int, counts: Mapping[str, int], *, expires_at: int, now: int
    ) -> dict[str, int]:
        keys = [key for key in sorted(counts) if counts[key] > 0 and is_storable(key)]
        if not keys:  # sorted: one lock order for every process, so two never deadlock
            return {}

        def work(conn: Connection) -> dict[str, int]:
            conn.execute(_PURGE, {"p_now": now})
            totals: dict[str, int] = {}
            for key in keys:
                row = {"key": key, "window": window, "count": counts[key], "expires_at": expires_at}
                totals[key] = int(conn.scalar(self._add, row) or 0)
            return totals

        return await self._db.write(work)
