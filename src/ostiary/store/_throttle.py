"""`SqlThrottleStore`: failures per key (a user, an address) in a sliding window."""

from __future__ import annotations

import hashlib
from typing import Final

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.engine import Connection

from ._database import Database
from ._schema import throttle_hits
from ._text import check_storable, is_storable

_h = throttle_hits.c
# pg_advisory_xact_lock(int, int): this class id, then the key's hash. The two-integer lock
# space is apart from the one-bigint space the migration lock uses.
_LOCK_CLASS: Final = int.from_bytes(b"thr\x01", "big", signed=True)
_LOCK: Final = text("SELECT pg_advisory_xact_lock(:p_class, :p_lock)")
_PRUNE: Final = delete(throttle_hits).where(
    _h.key == bindparam("p_key"), _h.at <= bindparam("p_since")
)
_HIT: Final = insert(throttle_hits)
_COUNT: Final = select(func.count()).where(
    _h.key == bindparam("p_key"), _h.at > bindparam("p_since")
)
_RECENT: Final = select(func.count(), func.max(_h.at)).where(
    _h.key == bindparam("p_key"), _h.at > bindparam("p_since")
)
_FORGIVE: Final = delete(throttle_hits).where(
    _h.id
    == select(_h.id)
    .where(_h.key == bindparam("p_key"), _h.at == bindparam("p_at"))
    .limit(1)
    .scalar_subquery()
)
_RESET: Final = delete(throttle_hits).where(_h.key == bindparam("p_key"))


class SqlThrottleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(self, key: str, *, now: int, window: int) -> int:
        check_storable(key)
        params = {"p_key": key, "p_since": now - window}
        lock = {"p_class": _LOCK_CLASS, "p_lock": _key_lock(key)}

        def work(conn: Connection) -> int:
            if self._db.is_postgresql:
                # Concurrent failures for one key must each see the others, or a burst of
                # parallel guesses would all read a count below the limit.
                conn.execute(_LOCK, lock)
            conn.execute(_PRUNE, params)
            conn.execute(_HIT, {"key": key, "at": now})
            return int(conn.scalar(_COUNT, params) or 0)

        return await self._db.write(work)

    async def count(self, key: str, *, now: int, window: int) -> int:
        if not is_storable(key):
            return 0
        params = {"p_key": key, "p_since": now - window}
        return await self._db.read(lambda conn: int(conn.scalar(_COUNT, params) or 0))

    async def recent(self, key: str, *, now: int, window: int) -> tuple[int, int | None]:
        if not is_storable(key):
            return 0, None
        params = {"p_key": key, "p_since": now - window}
        row = await self._db.read(lambda conn: conn.execute(_RECENT, params).one())
        return int(row[0] or 0), None if row[1] is None else int(row[1])

    async def forgive(self, key: str, *, at: int) -> None:
        if is_storable(key):
            params = {"p_key": key, "p_at": at}
            await self._db.write(lambda conn: conn.execute(_FORGIVE, params))

    async def reset(self, key: str) -> None:
        if is_storable(key):
            params = {"p_key": key}
            await self._db.write(lambda conn: conn.execute(_RESET, params))


def _key_lock(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)
