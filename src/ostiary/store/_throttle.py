"""`SqlThrottleStore`: failures per key (a user, an address) in a sliding window."""

from __future__ import annotations

import hashlib
from typing import Final

from sqlalchemy import delete, func, insert, select, text

from ._database import Database
from ._schema import throttle_hits

_hit = throttle_hits.c
# pg_advisory_xact_lock(int, int): this class id, then the key's hash. The two-integer lock
# space is apart from the one-bigint space the migration lock uses.
_LOCK_CLASS: Final = int.from_bytes(b"thr\x01", "big", signed=True)


class SqlThrottleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(self, key: str, *, now: int, window: int) -> int:
        since = now - window
        async with self._db.write() as conn:
            if self._db.is_postgresql:
                # Concurrent failures for one key must each see the others, or a burst of
                # parallel guesses would all read a count below the limit.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:class, :key)"),
                    {"class": _LOCK_CLASS, "key": _key_lock(key)},
                )
            await conn.execute(delete(throttle_hits).where(_hit.key == key, _hit.at <= since))
            await conn.execute(insert(throttle_hits).values(key=key, at=now))
            count = await conn.scalar(select(func.count()).where(_hit.key == key, _hit.at > since))
        return int(count or 0)

    async def count(self, key: str, *, now: int, window: int) -> int:
        query = select(func.count()).where(_hit.key == key, _hit.at > now - window)
        async with self._db.read() as conn:
            return int(await conn.scalar(query) or 0)

    async def reset(self, key: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(throttle_hits).where(_hit.key == key))


def _key_lock(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)
