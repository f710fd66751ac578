"""How long a fetched document may be used: `Cache-Control` and `Expires` (RFC 9111 §4.2.1)."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

_MAX_AGE: Final = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)")
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)")


def freshness(response: httpx.Response, *, default: float, least: float, most: float) -> float:
    """Seconds the response stays fresh, clamped to [least, most]; `default` when it says
    nothing. `no-cache`/`no-store` mean "ask again soon", which is `least` here."""
    control = response.headers.get("cache-control", "").lower()
    lifetime: float | None = None
    if _NO_CACHE.search(control):
        lifetime = 0
    elif (found := _MAX_AGE.search(control)) is not None:
        lifetime = int(found.group(1))
    elif "expires" in response.headers:
        lifetime = _expires_in(response)
    if lifetime is None:
        lifetime = default
    return min(max(lifetime, least), most)


def _expires_in(response: httpx.Response) -> float:
    try:
        expires = parsedate_to_datetime(response.headers["expires"])
        date = (
            parsedate_to_datetime(response.headers["date"]) if "date" in response.headers else None
        )
    except (TypeError, ValueError, IndexError):
        return 0  # RFC 9111 §5.3: an invalid Expires means already expired
    if date is None or expires.tzinfo is None or date.tzinfo is None:
        return 0
    return max((expires - date).total_seconds(), 0)
