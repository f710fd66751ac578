"""The settings and database `ostiary serve` uses, found the same way by every command.

A command that changes state works on the database a running server reads, so the change
applies at once, with no restart: settings come from `--config FILE` (or `OSTIARY_CONFIG`)
and the `OSTIARY_*` environment variables, exactly as for `serve`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.store import Store
from ostiary.server.settings import Settings, SettingsError, redact_url
from ostiary.store import migrate, open_store

from ._console import fail

T = TypeVar("T")


def load_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """`Settings` from the environment and `--config`, plus `overrides` (flags) that are set."""
    values = {name: value for name, value in overrides.items() if value is not None}
    if args.config is not None:
        values["config"] = args.config
    try:
        return Settings(**values)
    except ValidationError as exc:
        fail(describe_validation_error(exc))
    except SettingsError as exc:
        fail(str(exc))


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem pydantic found, in one line, named as the environment variable."""
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    location = ".".join(str(part) for part in error.get("loc", ()))
    if not location:
        return message
    return f"setting OSTIARY_{location.upper()}: {message}"


def run_with_store(
    args: argparse.Namespace,
    action: Callable[[Store], Awaitable[T]],
    *,
    migrate_first: bool = False,
    settings: Settings | None = None,
) -> T:
    """Run `action` with the server's store open; with `migrate_first`, bring the schema to
    the newest revision before (as `ostiary serve` does on start)."""
    settings = settings or load_settings(args)
    url = settings.database_url

    async def run() -> T:
        if migrate_first:
            await migrate(url)
        async with open_store(url, pool_size=1) as store:
            return await action(store)

    try:
        return asyncio.run(run())
    except SettingsError as exc:  # e.g. a key-encryption secret that does not fit the keys
        fail(str(exc))
    except (ValueError, RuntimeError) as exc:  # a bad URL, a missing or outdated schema
        fail(f"database {redact_url(url)}: {first_line(exc)}")
    except DatabaseUnavailable as exc:  # unreachable, refused, timed out
        fail(f"cannot use the database {redact_url(url)}: {first_line(exc.__cause__ or exc)}")
    except (SQLAlchemyError, OSError) as exc:  # permissions, and what the store does not wrap
        fail(f"cannot use the database {redact_url(url)}: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__
