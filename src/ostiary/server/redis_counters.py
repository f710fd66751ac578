"""`RedisRateCounters`: the rate-limit counters in Redis (`OSTIARY_REDIS_URL`), for
deployments that would rather keep this hot, short-lived state out of the database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import redis.asyncio as redis
from redis.exceptions import RedisError

# What a failed share raises: the limiter counts alone until Redis answers again.
REDIS_ERRORS: Final = (RedisError,)


class RedisRateCounters:
    """`ostiary.oauth.store.RateCounterStore` on Redis: one INCRBY and EXPIREAT per key, in
    one MULTI/EXEC round trip per share."""

    def __init__(self, url: str, *, prefix: str = "ostiary:rate", timeout: float = 5.0) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._prefix = prefix

    async def add(
        self, window: int, counts: Mapping[str, int], *, expires_at: int, now: int
    ) -> dict[str, int]:
        keys = [key for key in sorted(counts) if counts[key] > 0]
        if not keys:
            return {}
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in keys:
                name = f"{self._prefix}:{window}:{key}"
                pipe.incrby(name, counts[key])
                pipe.expireat(name, expires_at)
            replies = await pipe.execute()
        return {key: int(replies[2 * i]) for i, key in enumerate(keys)}

    async def ping(self) -> None:
        """Raise when Redis does not answer (checked at start-up)."""
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
