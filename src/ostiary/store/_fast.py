"""`FastStatement`: a Core statement compiled once per dialect, run on the raw driver.

The token endpoint's few statements (find a client, peek at and rotate a refresh token,
record an access token, append an audit event) run thousands of times a second. Through
SQLAlchemy's `Connection.execute` each costs 30-70 µs of Python before the database does any
work (compiled-cache lookup, events, result objects, and on PostgreSQL a greenlet hop and a
pool checkout); the same statement on the stdlib `sqlite3` cursor costs about 4 µs, and on an
asyncpg connection about 25 µs in all. So these statements are still written once, in Core
next to the schema, and compiled here to each dialect's SQL text and positional parameters;
`Database.fast_read` / `fast_write` run them on the driver's own connection.

Only JSON needs converting by hand (the other column types are what the drivers speak):
JSON parameters are sent as text, and JSON results arrive as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import JSON, Column, ColumnElement, Select, Table, any_, bindparam, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY, asyncpg
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled

_SQLITE: Final = sqlite.dialect(paramstyle="qmark")
# `$1::TYPE` parameters, as asyncpg takes them
_POSTGRESQL: Final = asyncpg.dialect()  # type: ignore[no-untyped-call]


class JsonText(str):
    """A JSON column value already encoded (say, with `orjson`): sent as it is."""

    __slots__ = ()


def json_text(value: Any) -> JsonText:
    """`value` encoded for a JSON column; `TypeError` for what JSON cannot hold."""
    try:
        encoded = orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"not JSON-serialisable: {exc}") from exc
    if b"null" in encoded:
        # orjson writes NaN and infinities as null: only the strict encoder can tell
        try:
            return JsonText(json.dumps(value, allow_nan=False, separators=(",", ":")))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"not JSON-serialisable: {exc}") from exc
    return JsonText(encoded.decode())


@dataclass(frozen=True)
class _Form:
    """One dialect's SQL text and where each positional parameter comes from."""

    sql: str
    names: tuple[str, ...]  # bind parameter name of each position
    defaults: Mapping[str, Any]  # values bound in the statement itself (literals)


class FastStatement:
    """A statement ready for both drivers: `args(params)` in, `mapping(row)` out."""

    def __init__(self, statement: ClauseElement, *, insert_columns: Sequence[str] = ()) -> None:
        keys = list(insert_columns) or None
        compiled = statement.compile(dialect=_SQLITE, column_keys=keys)
        self.sqlite = _form(compiled)
        self.postgresql = _form(statement.compile(dialect=_POSTGRESQL, column_keys=keys))
        binds: Mapping[str, Any] = getattr(compiled, "binds", {})
        self._json_binds = frozenset(
            name for name, bind in binds.items() if isinstance(bind.type, JSON)
        )
        columns = list(getattr(statement, "exported_columns", ()))
        self.columns: tuple[str, ...] = tuple(column.name for column in columns)
        self._json_columns = tuple(
            index for index, column in enumerate(columns) if isinstance(column.type, JSON)
        )

    def args(self, form: _Form, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name in form.names:
            value = params[name] if name in params else form.defaults[name]
            if name in self._json_binds and value is not None and type(value) is not JsonText:
                value = json_text(value)
            values.append(value)
        return tuple(values)

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        """A result row by column name, JSON columns decoded."""
        if not self.columns:
            # PostgreSQL's dialect adds `RETURNING id` to an INSERT of its own accord
            return {}
        values = dict(zip(self.columns, row, strict=True))
        for index in self._json_columns:
            name = self.columns[index]
            if isinstance(values[name], str):
                values[name] = orjson.loads(values[name])
        return values


def _form(compiled: Compiled) -> _Form:
    names = tuple(getattr(compiled, "positiontup", None) or ())
    binds: Mapping[str, Any] = getattr(compiled, "binds", {})
    defaults = {
        name: bind.effective_value
        for name, bind in binds.items()
        if not bind.required and bind.callable is None
    }
    return _Form(sql=compiled.string, names=names, defaults=defaults)


class _Arrays:
    """The values of several rows as PostgreSQL parameters, one array a column, to read back
    with `unnest($1::TYPE[], ...) AS source(alias, ...)`. JSON goes as text (as
    `FastStatement` sends it) and is cast back where it is selected."""

    def __init__(self, columns: Sequence[tuple[str, str, Column[Any]]]) -> None:
        # (the key of a row's value, its alias in the unnest, the column it is stored in)
        self.keys = tuple(key for key, _, _ in columns)
        self.aliases = tuple(alias for _, alias, _ in columns)
        self._json = frozenset(
            index for index, (_, _, column) in enumerate(columns) if isinstance(column.type, JSON)
        )
        self._types = tuple(column.type.compile(dialect=_POSTGRESQL) for _, _, column in columns)
        self.parameters = ", ".join(
            f"${position}::{'TEXT' if index in self._json else sql_type}[]"
            for index, (position, sql_type) in enumerate(enumerate(self._types, start=1))
        )

    def selected(self, source: str) -> dict[str, str]:
        """Each alias as `source`'s column, of its column's type."""
        return {
            alias: f"{source}.{alias}::{sql_type}" if index in self._json else f"{source}.{alias}"
            for index, (alias, sql_type) in enumerate(zip(self.aliases, self._types, strict=True))
        }

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The rows as the parameters: one list a column."""
        arrays: list[list[Any]] = []
        for index, key in enumerate(self.keys):
            if index in self._json:
                arrays.append(
                    [
                        None
                        if row[key] is None
                        else (row[key] if type(row[key]) is JsonText else json_text(row[key]))
                        for row in rows
                    ]
                )
            else:
                arrays.append([row[key] for row in rows])
        return arrays


class BatchInsert:
    """An INSERT of one row that may share one statement with the other rows of its kind
    written in the same turn of the event loop (`Database.fast_insert`).

    `one` inserts a single row, as a `FastStatement`; `many` is PostgreSQL's form for several:
    `INSERT ... SELECT ... FROM unnest($1::type[], ...)`, one array parameter a column, so a
    batch costs one round trip whatever its size.
    """

    def __init__(self, table: Table, *, exclude: Sequence[str] = ()) -> None:
        columns = [column for column in table.c if column.key not in exclude]
        self.columns: tuple[str, ...] = tuple(column.key for column in columns)
        self.one = FastStatement(insert(table), insert_columns=self.columns)
        self._arrays = _Arrays(
            [(column.key, f"c{position}", column) for position, column in enumerate(columns, 1)]
        )
        quote = _POSTGRESQL.identifier_preparer.quote
        names = ", ".join(quote(key) for key in self.columns)
        selected = ", ".join(self._arrays.selected("u").values())
        aliases = ", ".join(self._arrays.aliases)
        # names and types come from the schema; every value is a parameter
        table_name = quote(table.name)
        self.many = (
            f"INSERT INTO {table_name} ({names}) SELECT {selected}"  # noqa: S608
            f" FROM unnest({self._arrays.parameters}) AS u({aliases})"
        )

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The rows as `many`'s parameters: one list a column."""
        return self._arrays.values(rows)


class BatchLookup:
    """A read of one row by a unique key that may share one statement with the other reads
    of its kind made in the same turn of the event loop (`Database.fast_lookup`).

    `one` reads one row, as a `FastStatement` whose only parameter is `param`; `many` is
    PostgreSQL's form for several keys, `... WHERE key = ANY($1::TEXT[])`: one round trip
    whatever their number, and each key's row is found again by `key_of`.
    """

    def __init__(self, query: Select[Any], key: ColumnElement[str], *, param: str) -> None:
        self.param = param
        self.one = FastStatement(query.where(key == bindparam(param)))
        many = query.where(key == any_(bindparam(param, type_=ARRAY(key.type))))
        self.many = _form(many.compile(dialect=_POSTGRESQL)).sql
        self._key = self.one.columns.index(key.name)

    def key_of(self, row: Sequence[Any]) -> Any:
        """The key of a row as the driver returns it."""
        return row[self._key]


@dataclass(frozen=True, kw_only=True)
class BatchValue:
    """One parameter of a `BatchStatement`: its name, and its column's type on PostgreSQL."""

    name: str
    column: Column[Any]


class BatchStatement:
    """A statement run once per caller that may share one statement with the other calls
    of its kind made in the same turn of the event loop (`Database.fast_batch`).

    `one` is the statement for a single call, as a `FastStatement`. `many` is PostgreSQL's
    form for several, written by `build` around `input`: a relation of the calls, one row
    each, with a column per parameter and `ord`, the call's position (`unnest(...) WITH
    ORDINALITY`, one array parameter a column, so a batch costs one round trip). `many`
    returns `ord` first, then the columns `one` returns, for the calls that got a row.
    """

    def __init__(
        self,
        one: FastStatement,
        values: Sequence[BatchValue],
        build: Callable[[Mapping[str, str]], str],
    ) -> None:
        self.one = one
        self._arrays = _Arrays([(value.name, value.name, value.column) for value in values])
        aliases = ", ".join([*self._arrays.aliases, "ord"])
        source = f"unnest({self._arrays.parameters}) WITH ORDINALITY AS u({aliases})"
        selected = self._arrays.selected("input")
        self.many = f"WITH input AS (SELECT * FROM {source}), {build(selected)}"  # noqa: S608

    def arrays(self, calls: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The calls' parameters as `many`'s: one list a parameter."""
        return self._arrays.values(calls)
