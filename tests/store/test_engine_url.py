"""`engine_url`: plain database URLs to driver URLs, and everything else refused clearly,
never repeating a password."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from ostiary.store import DEFAULT_DATABASE_URL, engine_url

PASSWORD = "s3cr:et@/%?#"  # every character a URL parser might trip on
QUOTED_PASSWORD = "s3cr%3Aet%40%2F%25%3F%23"


@pytest.mark.parametrize(
    ("plain", "driver"),
    [
        ("sqlite:///ostiary.db", "sqlite+aiosqlite:///ostiary.db"),
        ("sqlite:///data/auth.db", "sqlite+aiosqlite:///data/auth.db"),
        (
            "sqlite:////var/lib/ostiary/ostiary.db",
            "sqlite+aiosqlite:////var/lib/ostiary/ostiary.db",
        ),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("SQLite:///ostiary.db", "sqlite+aiosqlite:///ostiary.db"),
        (" sqlite:///ostiary.db\n", "sqlite+aiosqlite:///ostiary.db"),
        (
            "postgresql://ostiary@db.internal:5432/auth",
            "postgresql+asyncpg://ostiary@db.internal:5432/auth",
        ),
        ("postgres://ostiary@db.internal/auth", "postgresql+asyncpg://ostiary@db.internal/auth"),
        ("postgresql://127.0.0.1/auth", "postgresql+asyncpg://127.0.0.1/auth"),
        (
            f"postgresql://ostiary:{QUOTED_PASSWORD}@db:5432/auth",
            f"postgresql+asyncpg://ostiary:{QUOTED_PASSWORD}@db:5432/auth",
        ),
        ("postgresql://db/auth?sslmode=require", "postgresql+asyncpg://db/auth?ssl=require"),
        (
            "postgresql://ostiary@/auth?host=/run/postgresql",
            "postgresql+asyncpg://ostiary@/auth?host=%2Frun%2Fpostgresql",
        ),
        # already a driver URL of ours: unchanged
        ("sqlite+aiosqlite:///ostiary.db", "sqlite+aiosqlite:///ostiary.db"),
        ("postgresql+asyncpg://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
    ],
)
def test_plain_url_to_driver_url(plain: str, driver: str) -> None:
    assert engine_url(plain) == driver


def test_default_is_a_sqlite_file_in_the_working_folder() -> None:
    assert engine_url(DEFAULT_DATABASE_URL) == "sqlite+aiosqlite:///ostiary.db"


def test_password_survives_quoting() -> None:
    url = make_url(engine_url(f"postgresql://ostiary:{QUOTED_PASSWORD}@db:5432/auth"))
    assert url.password == PASSWORD


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://root@localhost/ostiary", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "unsupported database URL scheme"),
        ("sqlite+pysqlite:///ostiary.db", "unsupported database URL scheme"),
        ("redis://127.0.0.1:6379/0", "unsupported database URL scheme"),
        ("ostiary.db", "not a URL"),
        ("", "not a URL"),
        ("sqlite://", "needs a file"),
        ("sqlite://host/ostiary.db", "names a file, not a server"),
        ("sqlite:///ostiary.db?mode=ro", "no query parameters"),
        ("postgresql://db.internal:5432", "needs a database name"),
        ("postgresql://db/auth?options=-csearch_path%3Dx", "unsupported PostgreSQL URL parameter"),
        ("postgresql://db/auth?sslmode=require&sslmode=disable", "more than once"),
        ("postgresql://db/auth?sslmode=require&ssl=disable", "more than once"),
    ],
)
def test_other_urls_refused(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        engine_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{QUOTED_PASSWORD}@localhost/ostiary",
        f"postgresql://ostiary:{QUOTED_PASSWORD}@db/auth?application_name=x",
        f"postgresql://ostiary:{QUOTED_PASSWORD}@db:5432",
        f"postgresql://ostiary:{QUOTED_PASSWORD}@db:notaport/auth",
        f"sqlite://u:{QUOTED_PASSWORD}@h/ostiary.db",
    ],
)
def test_refusal_never_repeats_the_password(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        engine_url(url)
    message = str(refused.value)
    assert "s3cr" not in message
    assert refused.value.__cause__ is None or "s3cr" not in str(refused.value.__cause__)


@pytest.mark.parametrize("value", [None, b"sqlite:///ostiary.db", 5])
def test_not_a_string_is_a_programming_error(value: Any) -> None:
    with pytest.raises(TypeError):
        engine_url(value)


@given(st.text(max_size=200))
def test_any_text_gives_a_driver_url_or_value_error(text: str) -> None:
    try:
        result = engine_url(text)
    except ValueError:
        return
    assert result.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://"))


@pytest.mark.parametrize(
    "path", ["ostiary.db", "my data/auth.db", "data/a?b#c.db", "/abs/p%41th/x.db", ":memory:"]
)
def test_sqlite_driver_url_names_the_same_file(path: str) -> None:
    plain = f"sqlite:///{quote(path)}"
    assert make_url(engine_url(plain)).database == path
