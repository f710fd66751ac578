"""Database URLs: the plain form operators write, and the async driver URL Ostiary uses.

Which driver serves a database is Ostiary's business, so settings name only the database:
`sqlite:///ostiary.db`, `postgresql://user@host:5432/db`. A URL may hold a password, so no
message here ever repeats the URL.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL: Final = "sqlite:///ostiary.db"  # one file in the working folder

SQLITE_DRIVER: Final = "sqlite+aiosqlite"
POSTGRESQL_DRIVER: Final = "postgresql+asyncpg"

_SQLITE_NAMES: Final = frozenset({"sqlite", SQLITE_DRIVER})
_POSTGRESQL_NAMES: Final = frozenset({"postgresql", "postgres", POSTGRESQL_DRIVER})
# libpq's `sslmode` is asyncpg's `ssl` (same values: disable, prefer, require, verify-ca,
# verify-full); `host` may name a Unix socket directory.
_POSTGRESQL_QUERY: Final = {"sslmode": "ssl", "ssl": "ssl", "host": "host"}


def engine_url(database_url: str) -> str:
    """The SQLAlchemy async driver URL for a plain database URL.

    `sqlite:///ostiary.db` -> `sqlite+aiosqlite:///ostiary.db`;
    `postgresql://u@h:5432/db` (or `postgres://`) -> `postgresql+asyncpg://u@h:5432/db`.
    Anything else raises `ValueError`.
    """
    url = parse_database_url(database_url)
    if is_sqlite_memory(url):
        return f"{SQLITE_DRIVER}:///:memory:"  # SQLAlchemy would write %3Amemory%3A
    return url.render_as_string(hide_password=False)


def parse_database_url(database_url: str) -> URL:
    """`engine_url` as a SQLAlchemy `URL` (never logged: it may hold a password)."""
    if not isinstance(database_url, str):
        raise TypeError("database_url must be a str")
    try:
        url = make_url(database_url.strip())
    except (ArgumentError, ValueError):
        # the URL may hold a password: never echo it
        raise ValueError(
            "database URL is not a URL: expected sqlite:///path/file.db or "
            "postgresql://user@host:5432/database"
        ) from None
    name = url.drivername.lower()
    if name in _SQLITE_NAMES:
        return _sqlite(url)
    if name in _POSTGRESQL_NAMES:
        return _postgresql(url)
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}: Ostiary stores its data in "
        "SQLite (sqlite:///path/file.db) or PostgreSQL (postgresql://user@host:5432/database)"
    )


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_sqlite_memory(url: URL) -> bool:
    return is_sqlite(url) and url.database == ":memory:"


def _sqlite(url: URL) -> URL:
    if url.host or url.username or url.password or url.port:
        raise ValueError(
            "a SQLite URL names a file, not a server: sqlite:///relative/file.db or "
            "sqlite:////absolute/file.db"
        )
    if not url.database:
        raise ValueError("a SQLite URL needs a file: sqlite:///ostiary.db")
    if url.query:
        raise ValueError(
            "a SQLite URL takes no query parameters: Ostiary sets its own connection options"
        )
    return url.set(drivername=SQLITE_DRIVER)


def _postgresql(url: URL) -> URL:
    if not url.database:
        raise ValueError("a PostgreSQL URL needs a database name: postgresql://host:5432/ostiary")
    unknown = sorted(set(url.query) - _POSTGRESQL_QUERY.keys())
    if unknown:
        raise ValueError(
            f"unsupported PostgreSQL URL parameter(s) {', '.join(unknown)}: "
            f"only {', '.join(sorted(_POSTGRESQL_QUERY))} are understood"
        )
    query: dict[str, str] = {}
    for key, value in url.query.items():
        if not isinstance(value, str) or _POSTGRESQL_QUERY[key] in query:
            raise ValueError(f"PostgreSQL URL parameter {key} is given more than once")
        query[_POSTGRESQL_QUERY[key]] = value
    return url.set(drivername=POSTGRESQL_DRIVER, query=query)
