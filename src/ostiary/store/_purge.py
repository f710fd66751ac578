"""`SqlPurge`: one bounded step of `TokenStore.purge_expired` on SQLite or PostgreSQL.

Each table is walked in pages of at most `limit` expired rows, in the order of its expiry
index (then primary key), from where the previous step of this process stopped. One short
transaction per page reads the page and deletes the rows of it the protocol no longer needs:
a large backlog never holds SQLite's write lock, or PostgreSQL's row locks, for long, and
rows that must stay (a rotated refresh token of a live family) are passed over once per
round instead of being read again by every statement.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from ostiary.oauth.models import PURGED_TABLES, Purged

from ._database import Database
from ._schema import (
    access_tokens,
    authorization_codes,
    login_sessions,
    rate_counters,
    rate_penalties,
    refresh_tokens,
    replay_entries,
    revoked_access_tokens,
    revoked_grants,
    throttle_hits,
)

# PostgreSQL: one process purges at a time. pg_try_advisory_xact_lock(int, int) (this class
# id, then 0), taken by every page's transaction: it never waits, so a process that finds
# another purging gives up its round at once (`Purged.busy`) instead of queueing behind it,
# and it is released by COMMIT, or by PostgreSQL when the process dies: never left behind. A
# SKIP LOCKED page would also avoid double work, but would still let every process scan.
# SQLite needs nothing more: BEGIN IMMEDIATE already runs writers one at a time.
_LOCK_CLASS: Final = int.from_bytes(b"prg\x01", "big", signed=True)
_TRY_LOCK: Final = text("SELECT pg_try_advisory_xact_lock(:p_class, 0)")

_BEFORE: Final[BindParameter[int]] = bindparam("p_before")


def _unexpired(table: Table, grant_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """A row of `table` (codes, refresh or access tokens) of this grant has not expired."""
    return exists().where(table.c.grant_id == grant_id, table.c.expires_at > _BEFORE)


_sibling = refresh_tokens.alias("sibling")


@dataclass(frozen=True)
class _Kind:
    table: Table
    order: tuple[Column[Any], ...]  # the paging order: an indexed column, then the key
    expired: ColumnElement[bool]  # a candidate
    needed: ColumnElement[bool] | None = None  # a candidate the protocol still needs

    @property
    def name(self) -> str:
        return self.table.name


_KINDS: Final = (
    _Kind(
        access_tokens,
        (access_tokens.c.expires_at, access_tokens.c.token_id),
        access_tokens.c.expires_at <= _BEFORE,
    ),
    # RFC 7009 §2.2: listed until the token would have expired anyway
    _Kind(
        revoked_access_tokens,
        (revoked_access_tokens.c.expires_at, revoked_access_tokens.c.token_id),
        revoked_access_tokens.c.expires_at <= _BEFORE,
    ),
    # RFC 9700 §4.14.2: presenting a rotated refresh token revokes its family, however old
    # that token is. Replacements expire `refresh_token_ttl` after their own issue (a sliding
    # expiry), so a family can outlive its early tokens by far: a token stays while any token
    # of its family has not expired, and a family goes whole once its newest token expired
    # (then no rotation can add to it, so a reuse has nothing left to revoke).
    _Kind(
        refresh_tokens,
        (refresh_tokens.c.expires_at, refresh_tokens.c.token_hash),
        refresh_tokens.c.expires_at <= _BEFORE,
        exists().where(
            _sibling.c.grant_id == refresh_tokens.c.grant_id, _sibling.c.expires_at > _BEFORE
        ),
    ),
    # RFC 6749 §4.1.2: a code redeemed twice revokes what it issued. Every token a code's
    # grant ever issued carries its grant_id (access tokens of a grant are always recorded,
    # `oauth/access_tokens.py`), so a redeemed code stays while one of them has not expired:
    # the first refresh token's family included, since its rotations came from the code too.
    # An unredeemed code that expired can never be redeemed, nor replayed: it goes.
    _Kind(
        authorization_codes,
        (authorization_codes.c.expires_at, authorization_codes.c.code_hash),
        authorization_codes.c.expires_at <= _BEFORE,
        authorization_codes.c.used_at.is_not(None)
        & or_(
            _unexpired(refresh_tokens, authorization_codes.c.grant_id),
            _unexpired(access_tokens, authorization_codes.c.grant_id),
        ),
    ),
    # A revoked grant is looked up for every token of it that may still be presented, and
    # for one a racing request writes after the revocation: it stays while a code, refresh
    # or access token of it has not expired. One revoked by deleting its client or user has
    # no `revoked_at` and stays for good (few, and its racing writes have no end to wait for).
    _Kind(
        revoked_grants,
        (revoked_grants.c.grant_id,),
        revoked_grants.c.revoked_at <= _BEFORE,  # NULL compares as unknown: never a candidate
        or_(
            _unexpired(authorization_codes, revoked_grants.c.grant_id),
            _unexpired(refresh_tokens, revoked_grants.c.grant_id),
            _unexpired(access_tokens, revoked_grants.c.grant_id),
        ),
    ),
    _Kind(
        replay_entries,
        (replay_entries.c.expires_at, replay_entries.c.key),
        replay_entries.c.expires_at <= _BEFORE,
    ),
    # An expired session goes once the sweeper (server/backchannel.py) has ended it: ending
    # it queues the logout tokens its clients are owed (Back-Channel Logout 1.0 §2.5).
    _Kind(
        login_sessions,
        (login_sessions.c.expires_at, login_sessions.c.session_hash),
        login_sessions.c.expires_at <= _BEFORE,
        login_sessions.c.ended_at.is_(None),
    ),
    # No index on `at` alone: walked by id (a throttle's `hit` prunes its own key as well).
    _Kind(
        throttle_hits,
        (throttle_hits.c.id,),
        throttle_hits.c.at <= bindparam("p_throttle_before"),
    ),
    _Kind(
        rate_counters,
        (rate_counters.c.expires_at, rate_counters.c.key, rate_counters.c.window),
        rate_counters.c.expires_at <= _BEFORE,
    ),
    _Kind(
        rate_penalties,
        (rate_penalties.c.forget_at, rate_penalties.c.key),
        rate_penalties.c.forget_at <= _BEFORE,
    ),
)
Cursor = tuple[Any, ...]


def _page(kind: _Kind, *, after: bool) -> Select[Any]:
    query = select(*kind.order).where(kind.expired)
    if after:
        first = kind.order[0]
        last: BindParameter[Any] = bindparam("p_after_0")
        if len(kind.order) == 1:
            query = query.where(first > last)
        else:
            # `first >= ...` lets the index range start at the cursor; the row value orders
            # the ties (SQLite 3.15+, PostgreSQL)
            values: list[BindParameter[Any]] = [
                bindparam(f"p_after_{i}") for i in range(len(kind.order))
            ]
            query = query.where(first >= last, tuple_(*kind.order) > tuple_(*values))
    return query.order_by(*kind.order).limit(bindparam("p_limit"))


def _delete(kind: _Kind) -> Delete:
    keys = kind.order[1:] or kind.order  # the primary key
    listed = (
        keys[0].in_(bindparam("p_keys", expanding=True))
        if len(keys) == 1
        else tuple_(*keys).in_(bindparam("p_keys", expanding=True))
    )
    conditions = [listed, kind.expired]  # expired still: the page was read in this transaction
    if kind.needed is not None:
        conditions.append(~kind.needed)
    return delete(kind.table).where(and_(*conditions))


_PAGES: Final = {kind.name: (_page(kind, after=False), _page(kind, after=True)) for kind in _KINDS}
_DELETES: Final = {kind.name: _delete(kind) for kind in _KINDS}


class SqlPurge:
    """The purge's statements, and where this process's walk of each table stands."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cursors: dict[str, Cursor] = {}

    async def step(self, *, before: int, limit: int, throttle_before: int | None) -> Purged:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        counts = dict.fromkeys(PURGED_TABLES, 0)
        more = False
        for kind in _KINDS:
            if kind.table is throttle_hits and throttle_before is None:
                continue
            params: dict[str, Any] = {
                "p_before": before,
                "p_throttle_before": throttle_before,
                "p_limit": limit,
                "p_class": _LOCK_CLASS,
            }
            outcome = await self._db.write(
                functools.partial(self._page, kind=kind, params=params), bulk=True
            )
            if outcome is None:
                return Purged(counts=counts, more=True, busy=True)
            counts[kind.name], full = outcome
            more = more or full
        return Purged(counts=counts, more=more)

    def _page(
        self, conn: Connection, kind: _Kind, params: dict[str, Any]
    ) -> tuple[int, bool] | None:
        """Delete what one page of `kind` holds that may go: (how many, whether the page was
        full); None when another process holds the purge lock."""
        if self._db.is_postgresql and not conn.execute(_TRY_LOCK, params).scalar():
            return None
        cursor = self._cursors.get(kind.name)
        first, following = _PAGES[kind.name]
        if cursor is not None:
            params |= {f"p_after_{i}": value for i, value in enumerate(cursor)}
        rows: Sequence[Any] = conn.execute(following if cursor is not None else first, params).all()
        full = len(rows) >= params["p_limit"]
        if full:
            self._cursors[kind.name] = tuple(rows[-1])
        else:
            self._cursors.pop(kind.name, None)  # the end: the next round starts over
        if not rows:
            return 0, full
        key_width = max(1, len(kind.order) - 1)
        keys = [tuple(row[-key_width:]) if key_width > 1 else row[-1] for row in rows]
        deleted = conn.execute(_DELETES[kind.name], params | {"p_keys": keys}).rowcount
        return int(deleted), full
