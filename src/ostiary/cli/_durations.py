"""Durations on the command line (`15m`) and moments for people (`expires in 5 minutes`)."""

from __future__ import annotations

import argparse
import math
import re
from datetime import UTC, datetime
from typing import Final

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION: Final = re.compile(r"-?(?:\d{1,12}|(?:\d{1,12}[smhdw])+)")
_PART: Final = re.compile(r"(\d+)([smhdw])")
_SPANS: Final = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def parse_duration(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `2h`, `7d`, `1w` or `1h30m`; a leading `-` for the past.

    An argparse `type=`: bad input becomes a usage error.
    """
    value = text.strip()
    if not _DURATION.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds or a number with s, m, h, d or w (15m, 1h30m)"
        )
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("-")
    if digits.isdigit():
        return sign * int(digits)
    return sign * sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(digits))


def parse_seconds(text: str) -> float:
    """A finite, non-negative number of seconds (an argparse `type=`)."""
    value = parse_timestamp(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def parse_timestamp(text: str) -> float:
    """A finite number: seconds since 1970-01-01 UTC (an argparse `type=`)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def describe_span(seconds: float) -> str:
    """`45 seconds`, `3 minutes`, `2 hours`, `1 day`, `4 years`: rounded down, never negative."""
    seconds = abs(seconds)
    for name, size in _SPANS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {name}{'' if count == 1 else 's'}"
    count = int(seconds)
    return f"{count} second{'' if count == 1 else 's'}"


def ago(seconds: float) -> str:
    """How long ago a moment `seconds` in the past was."""
    return "just now" if seconds < 1 else f"{describe_span(seconds)} ago"


def utc_datetime(timestamp: float) -> datetime | None:
    """The moment as an aware UTC datetime, or None when it is outside what dates can show."""
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
