"""`SharedRateLimiter`: counted in each process, shared in batches through the database or
Redis, with the overshoot its docstring states."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping

import pytest

from ostiary.oauth import throttling
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.memory import MemoryRateCounters
from ostiary.oauth.store import RateCounterStore
from ostiary.server.rate_limit import SharedRateLimiter
from ostiary.server.redis_counters import RedisRateCounters, RedisThrottleStore

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_900_000_040.0  # 20 s into a 60 s window (1_900_000_020 is a multiple of 60)


def limiter(counters: RateCounterStore, limit: int = 10) -> SharedRateLimiter:
    return SharedRateLimiter(
        counters, name="token", limit=limit, window=60, sync_interval=1, clock=lambda: T0
    )


def admitted(process: SharedRateLimiter, n: int, now: float = T0, key: str = "c_1") -> int:
    return sum(1 for _ in range(n) if process.take(key, now=now) == 0)


async def test_one_process_admits_the_limit_then_says_when_to_retry() -> None:
    one = limiter(MemoryRateCounters())
    assert admitted(one, 25) == 10
    assert one.take("c_1", now=T0) == 40  # the window ends at T0 + 40
    assert one.take("c_2", now=T0) == 0  # another key has its own budget
    assert one.take("c_1", now=T0 + 40) == 0  # a new window


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[RateCounterStore]:
    if request.param == "memory":
        yield MemoryRateCounters()
        return
    redis = RedisRateCounters(REDIS_URL, prefix=f"ostiary-test:{secrets.token_hex(6)}")
    try:
        await redis.ping()
    except OSError as exc:
        await redis.close()
        pytest.skip(f"Redis at 127.0.0.1:6379 is not reachable ({exc}); CI starts it (.ci/run)")
    except Exception as exc:  # redis-py wraps connection errors in its own types
        await redis.close()
        pytest.skip(f"Redis at 127.0.0.1:6379 is not usable ({type(exc).__name__}); .ci/run")
    try:
        yield redis
    finally:
        await redis.close()


async def test_two_processes_share_one_budget(counters: RateCounterStore) -> None:
    first, second = limiter(counters), limiter(counters)
    assert admitted(first, 6) == 6
    await first.share()
    assert admitted(second, 3) == 3
    await second.share()  # learns the first's 6
    assert admitted(second, 5) == 1  # 6 + 3 + 1 = the limit
    await second.share()
    assert admitted(first, 1) == 1  # not shared yet: the overshoot the bound allows
    await first.share()  # learns the second's 4
    assert admitted(first, 5) == 0


@pytest.mark.parametrize(("processes", "per_interval"), [(2, 3), (4, 5), (3, 20)])
async def test_overshoot_stays_within_the_documented_bound(
    counters: RateCounterStore, processes: int, per_interval: int
) -> None:
    """limit + (N - 1) * (requests one process admits per sync interval), and >= limit."""
    fleet = [limiter(counters, limit=50) for _ in range(processes)]
    total = 0
    for _ in range(40):
        for process in fleet:
            total += admitted(process, per_interval)
        for process in fleet:
            await process.share()
    assert 50 <= total <= 50 + (processes - 1) * per_interval


class Unreachable:
    async def add(
        self, window: int, counts: Mapping[str, int], *, expires_at: int, now: int
    ) -> dict[str, int]:
        raise DatabaseUnavailable("down")


async def test_counts_survive_a_failed_share() -> None:
    memory = MemoryRateCounters()
    process = limiter(Unreachable())
    assert admitted(process, 4) == 4
    with pytest.raises(DatabaseUnavailable):
        await process.share()
    process._counters = memory  # the database is back
    await process.share()
    assert await memory.add(int(T0 // 60), {"c_1": 1}, expires_at=2**40, now=0) == {"c_1": 5}


# -- failed-guess throttles in Redis ----------------------------------------------------------


@pytest.fixture
async def redis_throttle() -> AsyncIterator[RedisThrottleStore]:
    store = RedisThrottleStore(REDIS_URL, prefix=f"ostiary-test:{secrets.token_hex(6)}")
    try:
        await store.count("probe", now=0, window=1)
    except DatabaseUnavailable as exc:
        await store.close()
        pytest.skip(f"Redis at 127.0.0.1:6379 is not reachable ({exc.detail}); CI starts it")
    try:
        yield store
    finally:
        await store.close()


NOW = 1_900_000_000


async def test_redis_throttle_counts_inside_the_window(redis_throttle: RedisThrottleStore) -> None:
    throttle = redis_throttle
    assert await throttle.hit("user:alice", now=NOW, window=60) == 1
    assert await throttle.hit("user:alice", now=NOW + 30, window=60) == 2
    assert await throttle.count("user:alice", now=NOW + 59, window=60) == 2
    assert await throttle.count("user:alice", now=NOW + 60, window=60) == 1  # NOW left
    assert await throttle.recent("user:alice", now=NOW + 60, window=60) == (1, NOW + 30)
    await throttle.forgive("user:alice", at=NOW + 30)
    assert await throttle.recent("user:alice", now=NOW + 60, window=60) == (0, None)
    await throttle.hit("user:bob", now=NOW, window=60)
    await throttle.reset("user:bob")
    assert await throttle.count("user:bob", now=NOW, window=60) == 0


async def test_redis_throttle_lets_only_the_budget_through_a_burst(
    redis_throttle: RedisThrottleStore,
) -> None:
    config = ServerConfig(issuer="https://as.example")
    keys = ["login:user:x", "login:address:y"]
    waits = await asyncio.gather(
        *(throttling.take_attempt(redis_throttle, keys, now=NOW, config=config) for _ in range(20))
    )
    assert waits.count(0) == config.login_max_failures
    assert all(wait >= 1 for wait in waits if wait)


async def test_unreachable_redis_throttle_refuses_rather_than_lets_guesses_through() -> None:
    store = RedisThrottleStore("redis://127.0.0.1:1/0", timeout=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            await store.hit("user:alice", now=NOW, window=60)
    finally:
        await store.close()
