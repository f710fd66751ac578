"""Rate-limit counters and failed-guess throttles in Redis (`OSTIARY_REDIS_URL`), for
deployments that would rather keep this hot, short-lived state out of the database."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Final, cast

import redis.asyncio as redis
from redis.exceptions import RedisError, WatchError

from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.rate_limits import Penalty

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


class RedisPenaltyStore:
    """`ostiary.oauth.store.PenaltyStore` on Redis: one string per key (expiring when the
    penalty is forgotten) and a sorted set of the keys by that time, for `active`. An update
    is optimistic (WATCH, then MULTI/EXEC), retried when another process changed the key."""

    def __init__(self, url: str, *, prefix: str = "ostiary:penalty", timeout: float = 5.0) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._prefix = prefix
        self._index = f"{prefix}:index"  # every key, by forget_at
        self._waiting = f"{prefix}:waiting"  # every key, by until

    async def update(
        self, key: str, change: Callable[[Penalty | None], Penalty], *, now: int
    ) -> Penalty:
        name = f"{self._prefix}:{key}"
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(name)
                        current = _penalty(await pipe.get(name), now=now)
                        penalty = change(current)
                        if penalty == current:
                            return penalty  # leaving the pipeline ends the WATCH
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(name, _text(penalty), exat=max(penalty.forget_at, now + 1))
                        pipe.zadd(self._index, {key: penalty.forget_at})
                        pipe.zadd(self._waiting, {key: penalty.until})
                        pipe.zremrangebyscore(self._index, "-inf", now)
                        pipe.zremrangebyscore(self._waiting, "-inf", now)
                        await pipe.execute()
                        return penalty
                    except WatchError:
                        continue  # another process changed it first: read it again

    async def active(self, prefix: str, *, now: int, waiting: bool = False) -> dict[str, Penalty]:
        index = self._waiting if waiting else self._index
        with _reachable():
            members = await self._redis.zrangebyscore(index, f"({now}", "+inf")
            keys = [cast(bytes, member).decode("utf-8") for member in members]
            keys = [key for key in keys if key.startswith(prefix)]
            if not keys:
                return {}
            values = await self._redis.mget([f"{self._prefix}:{key}" for key in keys])
        found = {key: _penalty(value, now=now) for key, value in zip(keys, values, strict=True)}
        return {
            key: penalty
            for key, penalty in found.items()
            if penalty is not None and (not waiting or penalty.until > now)
        }

    async def forget(self, key: str) -> None:
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(f"{self._prefix}:{key}")
                pipe.zrem(self._index, key)
                pipe.zrem(self._waiting, key)
                await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


def _text(penalty: Penalty) -> str:
    return f"{penalty.strikes} {penalty.struck_at} {penalty.until} {penalty.forget_at}"


def _penalty(value: bytes | str | None, *, now: int) -> Penalty | None:
    if value is None:
        return None
    strikes, struck_at, until, forget_at = (int(part) for part in value.split())
    if forget_at <= now:
        return None
    return Penalty(strikes=strikes, struck_at=struck_at, until=until, forget_at=forget_at)


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise DatabaseUnavailable(
            "the server cannot reach its rate-limit store; try again shortly",
            detail=f"Redis: {type(exc).__name__}",
        ) from exc
