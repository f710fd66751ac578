"""`SqlLogoutQueue`: back-channel logout tokens waiting to be posted (Back-Channel Logout
1.0 §2.5), claimed by one server process at a time and kept until delivered or given up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection, RowMapping

from ostiary.oauth.models import PendingLogout

from ._database import Database
from ._schema import logout_deliveries

_d = logout_deliveries.c
# PostgreSQL: SKIP LOCKED lets processes claiming at the same moment take different rows
# instead of waiting on each other; SQLite runs one writer at a time and renders no lock.
_DUE: Final = (
    select(_d.delivery_id)
    .where(_d.next_attempt_at <= bindparam("p_now"))
    .order_by(_d.next_attempt_at, _d.delivery_id)
    .limit(bindparam("p_limit"))
    .with_for_update(skip_locked=True)
)
# Claiming counts the attempt and hides the row for the lease: a process that dies while
# sending leaves it to be claimed again once the lease runs out.
_CLAIM: Final = (
    update(logout_deliveries)
    .where(_d.delivery_id.in_(_DUE.scalar_subquery()))
    .values(attempts=_d.attempts + 1, next_attempt_at=bindparam("p_until"))
    .returning(*logout_deliveries.c)
)
_DONE: Final = delete(logout_deliveries).where(_d.delivery_id == bindparam("p_id"))
_RETRY: Final = (
    update(logout_deliveries)
    .where(_d.delivery_id == bindparam("p_id"))
    .values(next_attempt_at=bindparam("p_at"))
)
_LIST: Final = select(logout_deliveries).order_by(_d.delivery_id)


class SqlLogoutQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, *, now: int, lease: int, limit: int) -> Sequence[PendingLogout]:
        if limit < 1 or lease < 1:
            raise ValueError("limit and lease must be positive")
        params = {"p_now": now, "p_limit": limit, "p_until": now + lease}

        def work(conn: Connection) -> list[PendingLogout]:
            rows = conn.execute(_CLAIM, params).mappings().all()
            return sorted((_pending(row) for row in rows), key=lambda p: p.delivery_id)

        return await self._db.write(work)

    async def finish(self, delivery_id: int) -> None:
        params = {"p_id": delivery_id}
        await self._db.write(lambda conn: conn.execute(_DONE, params))

    async def retry(self, delivery_id: int, *, at: int) -> None:
        params = {"p_id": delivery_id, "p_at": at}
        await self._db.write(lambda conn: conn.execute(_RETRY, params))

    async def pending(self) -> Sequence[PendingLogout]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).mappings().all())
        return [_pending(row) for row in rows]


def _pending(row: RowMapping) -> PendingLogout:
    return PendingLogout(
        delivery_id=int(row["delivery_id"]),
        client_id=row["client_id"],
        user_id=row["user_id"],
        sid=row["sid"],
        jti=row["jti"],
        reason=row["reason"],
        created_at=int(row["created_at"]),
        attempts=int(row["attempts"]),
    )
