"""Rate-limit counters and failed-guess throttles in Redis (`OSTIARY_REDIS_URL`), for
deployments that would rather keep this hot, short-lived state out of the database."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from typing import Final, cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from ostiary.oauth.errors import DatabaseUnavailable

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


class RedisThrottleStore:
    """`ostiary.oauth.store.ThrottleStore` on Redis: one sorted set of failure times per key.
    A hit prunes, adds and counts in one MULTI/EXEC, so parallel failures each see the
    others. When Redis does not answer, the request gets 503 (`DatabaseUnavailable`), never a
    pass: a throttle that fails open would let guessing through."""

    def __init__(self, url: str, *, prefix: str = "ostiary:throttle", timeout: float = 5.0) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def hit(self, key: str, *, now: int, window: int) -> int:
        name = self._name(key)
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(name, "-inf", now - window)
                pipe.zadd(name, {f"{now}:{secrets.token_hex(8)}": now})
                pipe.zcard(name)
                pipe.expire(name, window)
                replies = await pipe.execute()
        return int(replies[2])

    async def count(self, key: str, *, now: int, window: int) -> int:
        with _reachable():
            return int(await self._redis.zcount(self._name(key), f"({now - window}", "+inf"))

    async def recent(self, key: str, *, now: int, window: int) -> tuple[int, int | None]:
        name = self._name(key)
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zcount(name, f"({now - window}", "+inf")
                pipe.zrevrangebyscore(
                    name, "+inf", f"({now - window}", start=0, num=1, withscores=True
                )
                count, latest = await pipe.execute()
        return int(count), int(latest[0][1]) if latest else None

    async def forgive(self, key: str, *, at: int) -> None:
        name = self._name(key)
        with _reachable():
            members = await self._redis.zrangebyscore(name, at, at, start=0, num=1)
            if members:
                await self._redis.zrem(name, cast(bytes, members[0]))

    async def reset(self, key: str) -> None:
        with _reachable():
            await self._redis.delete(self._name(key))

    async def close(self) -> None:
        await self._redis.aclose()


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise DatabaseUnavailable(
            "the server cannot reach its rate-limit store; try again shortly",
            detail=f"Redis: {type(exc).__name__}",
        ) from exc
