"""`SqlAuditLog`: audit events in the database, and as one JSON line each on the
`ostiary.audit` logger. An `AuditEvent` never holds a secret or a token (see models)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import bindparam, or_, select
from sqlalchemy.engine import RowMapping

from ostiary.oauth.models import AuditEvent

from ._database import Database
from ._fast import BatchInsert, json_text
from ._schema import audit_events
from ._text import check_storable

logger: Final = logging.getLogger("ostiary.audit")
# Where the lines go once `logger` is enabled for them: its handlers, through a `LogRecord`
# each, unless the process has given a writer of its own (`write_audit_lines_with`).
_write_line: Callable[[str], None] | None = None

# Every issued token is audited: the hot path's one write for client_credentials.
RECORD_ROWS: Final = BatchInsert(audit_events, exclude=["id"])
RECORD: Final = RECORD_ROWS.one
_TAIL: Final = select(audit_events).order_by(audit_events.c.id.desc()).limit(bindparam("p_limit"))


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    """Which events to read: every field that is set must match.

    `event` matches the name itself or its family: "login" matches "login.failed" too."""

    event: str | None = None
    client_id: str | None = None
    user_id: str | None = None


def audit_values(event: AuditEvent) -> dict[str, Any]:
    """The event as the parameters of `RECORD` (its detail encoded once, for the row and
    the log line); `ValueError` for text that cannot be stored."""
    check_storable(event.event, event.client_id, event.user_id, event.grant_id, event.address)
    return {
        "event": event.event,
        "at": event.at,
        "client_id": event.client_id,
        "user_id": event.user_id,
        "grant_id": event.grant_id,
        "address": event.address,
        "detail": json_text(dict(event.detail)),
    }


def log_audit_line(values: dict[str, Any]) -> None:
    """The JSON log line of an event once it is stored (`values` from `audit_values`)."""
    if logger.isEnabledFor(logging.INFO):
        line: dict[str, Any] = {key: value for key, value in values.items() if value is not None}
        line["detail"] = orjson.Fragment(str(values["detail"]))
        text = orjson.dumps(line, option=orjson.OPT_SORT_KEYS).decode()
        write = _write_line
        if write is None:
            logger.info(text)
        else:
            write(text)


def write_audit_lines_with(write: Callable[[str], None] | None) -> None:
    """Hand the audit lines, still only while the `ostiary.audit` logger is enabled for INFO,
    to `write` rather than to that logger's handlers (`None`: to the handlers again).

    For a process whose audit logger has one handler that writes the bare message, as
    `ostiary serve` configures it: the `LogRecord` made for every issued token, and the
    filtering and formatting it goes through, cost about as much as the database row."""
    global _write_line  # noqa: PLW0603 - one setting for the whole process
    _write_line = write


class SqlAuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, event: AuditEvent) -> None:
        values = audit_values(event)
        await self._db.fast_insert(RECORD_ROWS, values)
        log_audit_line(values)

    async def tail(self, limit: int = 50) -> Sequence[AuditEvent]:
        """The newest `limit` events, oldest first."""
        if limit <= 0:
            return []
        params = {"p_limit": limit}
        rows = await self._db.read(lambda conn: conn.execute(_TAIL, params).mappings().all())
        return [_event(row) for row in reversed(rows)]

    async def read(
        self,
        *,
        after: int | None = None,
        limit: int = 50,
        where: AuditFilter | None = None,
    ) -> Sequence[tuple[int, AuditEvent]]:
        """Events with their row ids, oldest first: the newest `limit` ones, or with `after`
        the first `limit` ones whose id is greater (to follow the log)."""
        if limit <= 0:
            return []
        query = select(audit_events)
        where = where or AuditFilter()
        if where.event is not None:
            family = audit_events.c.event.startswith(where.event + ".", autoescape=True)
            query = query.where(or_(audit_events.c.event == where.event, family))
        if where.client_id is not None:
            query = query.where(audit_events.c.client_id == where.client_id)
        if where.user_id is not None:
            query = query.where(audit_events.c.user_id == where.user_id)
        if after is not None:
            query = query.where(audit_events.c.id > after).order_by(audit_events.c.id)
        else:
            query = query.order_by(audit_events.c.id.desc())
        query = query.limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).mappings().all())
        ordered = rows if after is not None else list(reversed(rows))
        return [(int(row["id"]), _event(row)) for row in ordered]


def _event(row: RowMapping) -> AuditEvent:
    return AuditEvent(
        event=row["event"],
        at=int(row["at"]),
        client_id=row["client_id"],
        user_id=row["user_id"],
        grant_id=row["grant_id"],
        address=row["address"],
        detail=row["detail"],
    )
