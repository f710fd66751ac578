"""The handler of `ostiary audit tail`, loaded only when it runs (`audit_commands.py`)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError

from ostiary.oauth.models import AuditEvent
from ostiary.server.settings import redact_url
from ostiary.store import AuditFilter, SqlStore, open_store

from ._console import fail, printable
from ._durations import utc_datetime
from ._server_settings import first_line, load_settings

# PostgreSQL hands out ids when rows are inserted, not when they commit: a row may become
# visible after a higher id already was. --follow looks back this many ids for such rows.
FOLLOW_LOOKBACK: Final = 1000
_PAGE: Final = 500

Row = tuple[int, AuditEvent]


def tail(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    url = settings.database_url
    where = AuditFilter(event=args.event, client_id=args.client, user_id=args.user)
    try:
        asyncio.run(_tail(url, where, args))
    except (ValueError, RuntimeError) as exc:  # a bad URL, a missing or outdated schema
        fail(f"database {redact_url(url)}: {first_line(exc)}")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot use the database {redact_url(url)}: {first_line(exc)}")
    return 0


async def _tail(url: str, where: AuditFilter, args: argparse.Namespace) -> None:
    async with open_store(url, pool_size=1) as store:
        rows = await store.audit.read(limit=args.lines, where=where) if args.lines else []
        _print(rows, as_json=args.json)
        if not args.follow:
            return
        newest = rows[-1][0] if rows else await _newest_id(store)
        await _follow(store, where, newest, args)


async def _newest_id(store: SqlStore) -> int:
    newest = await store.audit.read(limit=1)
    return newest[-1][0] if newest else 0


async def _follow(
    store: SqlStore, where: AuditFilter, newest: int, args: argparse.Namespace
) -> None:
    # what exists now was printed above or is older history: only later commits are news
    seen = {row_id for row_id, _ in await _since(store, where, newest - FOLLOW_LOOKBACK)}
    while True:
        await asyncio.sleep(args.interval)
        fresh = [
            row
            for row in await _since(store, where, newest - FOLLOW_LOOKBACK)
            if row[0] not in seen
        ]
        _print(fresh, as_json=args.json)
        seen.update(row_id for row_id, _ in fresh)
        newest = max([newest, *(row_id for row_id, _ in fresh)])
        seen = {row_id for row_id in seen if row_id > newest - FOLLOW_LOOKBACK}


async def _since(store: SqlStore, where: AuditFilter, after: int) -> list[Row]:
    rows: list[Row] = []
    after = max(0, after)
    while True:
        page = await store.audit.read(after=after, limit=_PAGE, where=where)
        rows.extend(page)
        if len(page) < _PAGE:
            return rows
        after = page[-1][0]


def _print(rows: Sequence[Row], *, as_json: bool) -> None:
    for row_id, event in rows:
        print(_json_line(row_id, event) if as_json else _text_line(event), flush=True)


def _view(row_id: int, event: AuditEvent) -> dict[str, Any]:
    when = utc_datetime(event.at)
    return {
        "id": row_id,
        "event": event.event,
        "at": event.at,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None,
        "client_id": event.client_id,
        "user_id": event.user_id,
        "grant_id": event.grant_id,
        "address": event.address,
        "detail": dict(event.detail),
    }


def _json_line(row_id: int, event: AuditEvent) -> str:
    # ensure_ascii: a log line must not carry terminal control characters or odd encodings
    return json.dumps(_view(row_id, event), separators=(",", ":"), sort_keys=True)


def _text_line(event: AuditEvent) -> str:
    when = utc_datetime(event.at)
    parts = [when.strftime("%Y-%m-%d %H:%M:%SZ") if when is not None else str(event.at)]
    parts.append(event.event)
    for name, value in (
        ("client", event.client_id),
        ("user", event.user_id),
        ("grant", event.grant_id),
        ("address", event.address),
    ):
        if value is not None:
            parts.append(f"{name}={value}")
    if event.detail:
        parts.append(json.dumps(dict(event.detail), separators=(",", ":"), sort_keys=True))
    return printable("  ".join(parts))
