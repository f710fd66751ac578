"""Opaque access tokens, checked by the issuer's introspection endpoint (RFC 7662).

The resource server authenticates as a client (HTTP Basic, RFC 7662 §2.1). Answers are cached
for a short while, keyed by the token's SHA-256: an active answer never past the token's own
`exp`, so a cached token never outlives itself.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

import httpx

from ._errors import Unavailable

log = logging.getLogger("ostiary.protect")

MAX_ANSWER_SIZE: Final = 64 * 1024


class Introspector:
    """`await introspector.introspect(token)`: the active token's members, or None."""

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient,
        cache_ttl: float = 30,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        # RFC 7662 §2.1 uses RFC 6749 §2.3.1: both parts form-urlencoded before Basic.
        self._auth = httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))
        self._http = http
        self._cache_ttl = cache_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[bytes, tuple[dict[str, Any] | None, float]] = {}

    async def introspect(self, token: str) -> dict[str, Any] | None:
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        answer = await self._ask(token)
        until = now + self._cache_ttl
        if answer is not None:
            exp = answer.get("exp")
            if type(exp) is not int:
                return answer  # no expiry to bound a cache entry by: not cached
            until = min(until, exp)
        if len(self._cache) >= self._max_entries:
            self._evict(now)
        self._cache[key] = (answer, until)
        return answer

    async def _ask(self, token: str) -> dict[str, Any] | None:
        try:
            response = await self._http.post(
                self.endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
                headers={"Accept": "application/json"},
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            log.warning("introspection failed: %s", type(exc).__name__)
            raise Unavailable(
                "the token cannot be checked now; try again later", retry_after=5
            ) from exc
        if response.status_code != 200 or len(response.content) > MAX_ANSWER_SIZE:
            # 401 here means this resource server's own credentials are wrong: an operator's
            # problem, logged, and not the caller's fault.
            log.warning("introspection answered %s", response.status_code)
            raise Unavailable("the token cannot be checked now; try again later", retry_after=5)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            log.warning("introspection sent no RFC 7662 answer")
            raise Unavailable("the token cannot be checked now; try again later", retry_after=5)
        return answer if answer["active"] is True else None

    def _evict(self, now: float) -> None:
        expired = [key for key, (_, until) in self._cache.items() if until <= now]
        for key in expired:
            del self._cache[key]
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]  # the oldest entry
