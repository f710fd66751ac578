"""`RemoteJWKSet`: the issuer's signing keys, cached by their HTTP cache headers.

- Fresh keys are used as they are; stale ones keep serving while one background fetch
  replaces them, so no request waits for the issuer.
- A token whose `kid` is unknown triggers at most one fetch per `refetch_interval`, shared by
  every request waiting for it: attacker-chosen kids cannot make the issuer busy.
- A key the issuer no longer publishes is gone after the next successful fetch.
- When the issuer is down the last keys keep serving, up to `max_stale` seconds past their
  freshness; with no keys at all, requests fail closed (`Unavailable`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Final

import httpx

from ostiary.jose import JoseError, JWKSet
from ostiary.jose.jwk import JWK

from ._errors import Unavailable
from ._fetch import FetchError, fetch_json
from ._http_cache import freshness
from ._refetch import Refetcher

log = logging.getLogger("ostiary.protect")

MAX_KEYS: Final = 100


class RemoteJWKSet:
    """The keys at `jwks_uri`; `await keys.key(kid)` or `await keys.keyset()`."""

    def __init__(
        self,
        jwks_uri: str,
        *,
        http: httpx.AsyncClient,
        refetch_interval: float = 30,
        default_max_age: float = 300,
        max_max_age: float = 86_400,
        max_stale: float = 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._http = http
        self._default_max_age = default_max_age
        self._least_max_age = refetch_interval
        self._max_max_age = max_max_age
        self._max_stale = max_stale
        self._clock = clock
        self._keyset: JWKSet | None = None
        self._by_kid: dict[str, JWK] = {}
        self._fresh_until = -math.inf
        self._fetch = Refetcher(self._refresh, interval=refetch_interval, clock=clock)
        # Bumped whenever the usable keys change (a fetch brings other keys, or they are
        # dropped as too stale): what was verified under older keys is checked again.
        self.generation = 0

    async def keyset(self) -> JWKSet:
        """Every key, fetching the first time (and in the background when stale)."""
        now = self._clock()
        if self._keyset is not None and now > self._fresh_until + self._max_stale:
            self._forget()  # too old to trust: fail closed until the issuer answers again
        if self._keyset is None:
            await self._fetch.run()
            if self._keyset is None:
                raise Unavailable(
                    "the issuer's signing keys cannot be fetched; try again later",
                    retry_after=max(1, math.ceil(self._fetch.interval)),
                )
        elif now >= self._fresh_until:
            self._fetch.start()
        return self._keyset

    def is_current(self, generation: int) -> bool:
        """True when `generation` is still this set's, and the keys may be trusted now; starts
        the background refresh when they are stale, as `keyset()` does."""
        if generation != self.generation:
            return False
        now = self._clock()
        if now >= self._fresh_until:
            if now > self._fresh_until + self._max_stale:
                return False
            self._fetch.start()
        return True

    async def key(self, kid: str) -> JWK | None:
        """The key with this `kid`, refetching once per interval when it is unknown."""
        await self.keyset()
        found = self._by_kid.get(kid)
        if found is None and await self._fetch.run():
            found = self._by_kid.get(kid)
        return found

    async def _refresh(self) -> bool:
        try:
            document, response = await fetch_json(self._http, self.jwks_uri)
            keyset = _verification_keys(document)
        except (FetchError, JoseError) as exc:
            log.warning("JWKS refresh failed, keeping the cached keys: %s", exc)
            return False
        lifetime = freshness(
            response,
            default=self._default_max_age,
            least=self._least_max_age,
            most=self._max_max_age,
        )
        if self._keyset is None or keyset.to_dict() != self._keyset.to_dict():
            self.generation += 1
        self._keyset = keyset
        self._by_kid = {key.kid: key for key in keyset if key.kid is not None}
        self._fresh_until = self._clock() + lifetime
        return True

    def _forget(self) -> None:
        self.generation += 1
        self._keyset = None
        self._by_kid = {}

    async def aclose(self) -> None:
        await self._fetch.aclose()


def _verification_keys(document: dict[str, object]) -> JWKSet:
    """The public signature keys of a JWKS document; private or symmetric keys are refused
    outright (a JWKS that publishes them is broken, and HMAC keys invite key confusion)."""
    members = document.get("keys")
    if not isinstance(members, list) or len(members) > MAX_KEYS:
        raise FetchError(f"a JWKS has a 'keys' array of at most {MAX_KEYS} keys")
    keyset = JWKSet.from_dict(document)
    kept = [
        key
        for key in keyset
        if not key.is_symmetric and not key.is_private and key.allows("verify")
    ]
    return JWKSet(kept)
