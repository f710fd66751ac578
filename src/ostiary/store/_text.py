"""Which strings a database can hold: PostgreSQL `text` refuses NUL, and neither database
takes lone surrogates (not UTF-8). Such a value was never stored, so a lookup by it finds
nothing rather than failing with a driver error; writing one is a `ValueError`."""

from __future__ import annotations

from collections.abc import Iterable


def is_storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_storable(*values: str | None, more: Iterable[str] = ()) -> None:
    """`ValueError` unless every value can be stored as text."""
    for value in (*values, *more):
        if value is not None and not is_storable(value):
            raise ValueError("text with NUL or unpaired surrogates cannot be stored")
