"""The shared limits of the back-channel endpoints (`ostiary.server.rate_limit`):
`SharedRateLimiter` counts in each process, shares in batches and backs off exponentially;
`SharedClientAuthLimiter` shares failed client authentication at once. Each on every store
that can share them: memory, SQLite, PostgreSQL and Redis, with the overshoot its docstring
states and no lost update under a race."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_app import database_url_for

from ostiary.oauth import throttling
from ostiary.oauth.config import ServerConfig
from ostiary.oauth.errors import DatabaseUnavailable
from ostiary.oauth.memory import MemoryPenaltyStore, MemoryRateCounters
from ostiary.oauth.rate_limits import ClientAuthWait, Penalty, failure, strike
from ostiary.oauth.store import PenaltyStore, RateCounterStore
from ostiary.server.rate_limit import SharedClientAuthLimiter, SharedRateLimiter
from ostiary.server.redis_counters import (
    RedisPenaltyStore,
    RedisRateCounters,
    RedisThrottleStore,
)
from ostiary.store import migrate, open_store

pytestmark = pytest.mark.anyio

REDIS_URL = "redis://127.0.0.1:6379/0"
WINDOW = 60
T0 = 1_900_000_040.0  # 20 s into a 60 s window (1_900_000_020 is a multiple of 60)
RACERS = 50


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Shared:
    """What the processes of one deployment share."""

    counters: RateCounterStore
    penalties: PenaltyStore


def limiter(
    shared: Shared, limit: int = 10, clock: Clock | None = None, cap: int = 3600
) -> SharedRateLimiter:
    return SharedRateLimiter(
        shared.counters,
        shared.penalties,
        name="token",
        limit=limit,
        window=WINDOW,
        sync_interval=1,
        backoff_cap=cap,
        clock=clock or Clock(),
    )


def admitted(process: SharedRateLimiter, n: int, now: float = T0, key: str = "c_1") -> int:
    return sum(1 for _ in range(n) if process.take(key, now=now) == 0)


async def _redis_ready(store: RedisRateCounters) -> None:
    try:
        await store.ping()
    except OSError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 is not reachable ({exc}); CI starts it (.ci/run)")
    except Exception as exc:  # redis-py wraps connection errors in its own types
        pytest.skip(f"Redis at 127.0.0.1:6379 is not usable ({type(exc).__name__}); .ci/run")


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Shared]:
    if request.param == "memory":
        yield Shared(MemoryRateCounters(), MemoryPenaltyStore())
        return
    if request.param == "redis":
        prefix = f"ostiary-test:{secrets.token_hex(6)}"
        counters = RedisRateCounters(REDIS_URL, prefix=f"{prefix}:rate")
        penalties = RedisPenaltyStore(REDIS_URL, prefix=f"{prefix}:penalty")
        try:
            await _redis_ready(counters)
            yield Shared(counters, penalties)
        finally:
            await counters.close()
            await penalties.close()
        return
    async with database_url_for(request.param, tmp_path) as url:
        await migrate(url)
        async with open_store(url) as store:
            yield Shared(store.rates, store.penalties)


async def test_one_process_admits_the_limit_then_says_when_to_retry() -> None:
    one = limiter(Shared(MemoryRateCounters(), MemoryPenaltyStore()))
    assert admitted(one, 25) == 10
    assert one.take("c_1", now=T0) == 40  # the window ends at T0 + 40
    assert one.take("c_2", now=T0) == 0  # another key has its own budget
    assert one.take("c_1", now=T0 + 40) == 0  # a new window


async def test_a_client_that_keeps_overrunning_waits_twice_as_long_each_time() -> None:
    one = limiter(Shared(MemoryRateCounters(), MemoryPenaltyStore()))
    now = T0
    waits = []
    for _ in range(4):
        assert admitted(one, 10, now=now) == 10
        waits.append(one.take("c_1", now=now))
        assert one.take("c_1", now=now + waits[-1] - 1) >= 1  # still refused just before
        now += waits[-1]  # back the moment it may: it spends its budget and overruns again
    # to the window's end (40 s left), then 2, 4 and 8 windows from the overrun's window
    assert waits == [40, 2 * WINDOW, 4 * WINDOW, 8 * WINDOW]
    # it behaves for a whole window after its penalty: forgotten, one window again
    now += WINDOW
    assert admitted(one, 11, now=now) == 10
    assert one.take("c_1", now=now) == WINDOW - now % WINDOW


async def test_two_processes_share_one_budget(shared: Shared) -> None:
    first, second = limiter(shared), limiter(shared)
    assert admitted(first, 6) == 6
    await first.share()
    assert admitted(second, 3) == 3
    await second.share()  # learns the first's 6
    assert admitted(second, 5) == 1  # 6 + 3 + 1 = the limit
    await second.share()
    assert admitted(first, 1) == 1  # not shared yet: the overshoot the bound allows
    await first.share()  # learns the second's 4
    assert admitted(first, 5) == 0


async def test_a_penalty_set_by_one_process_holds_at_the_other(shared: Shared) -> None:
    clock = Clock()
    first, second = limiter(shared, clock=clock), limiter(shared, clock=clock)
    # window 1: the first process overruns; both learn the strike
    assert admitted(first, 11) == 10
    await first.share()
    await second.share()
    assert second.take("c_1", now=T0 + 1) == 39
    # window 2: the client comes back at once and overruns at the second process
    clock.now = now = T0 + 40
    assert admitted(second, 11, now=now) == 10
    await second.share()
    await first.share()  # the first never saw this window's overrun, but learns its penalty
    assert first.take("c_1", now=now + 1) == 2 * WINDOW - 1
    # both processes saw a strike in window 3 (each from its own count): it counts once
    clock.now = now = T0 + 40 + 2 * WINDOW
    assert admitted(first, 11, now=now) == 10
    assert admitted(second, 1, now=now) == 1  # not shared yet: its own budget
    assert admitted(second, 10, now=now) == 9
    await first.share()
    await second.share()
    await first.share()
    waits = {process.take("c_1", now=now) for process in (first, second)}
    assert waits == {4 * WINDOW}  # the third strike, once: four windows, not eight


@pytest.mark.parametrize(("processes", "per_interval"), [(2, 3), (4, 5), (3, 20)])
async def test_overshoot_stays_within_the_documented_bound(
    processes: int, per_interval: int
) -> None:
    """limit + (N - 1) * (requests one process admits per sync interval), and >= limit."""
    shared = Shared(MemoryRateCounters(), MemoryPenaltyStore())
    fleet = [limiter(shared, limit=50) for _ in range(processes)]
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


async def test_counts_and_strikes_survive_a_failed_share() -> None:
    memory = MemoryRateCounters()
    penalties = MemoryPenaltyStore()
    process = limiter(Shared(Unreachable(), penalties))
    assert admitted(process, 11) == 10
    with pytest.raises(DatabaseUnavailable):
        await process.share()
    assert process.take("c_1", now=T0) == 40  # still refused meanwhile, by what it knows
    process._counters = memory  # the database is back
    await process.share()
    assert await memory.add(int(T0 // 60), {"c_1": 1}, expires_at=2**40, now=0) == {"c_1": 11}
    assert (await penalties.active("token:", now=int(T0)))["token:c_1"].strikes == 1


# -- the penalty store: one contract, every backend ----------------------------------------

NOW = 1_900_000_000


async def test_penalty_store_contract(shared: Shared) -> None:
    store = shared.penalties
    first = await store.update(
        "token:c_a", functools.partial(strike, at=NOW, window=WINDOW, cap=60), now=NOW
    )
    assert first == strike(None, at=NOW, window=WINDOW, cap=60)
    await store.update(
        "client_auth:pair:x",
        functools.partial(failure, at=NOW, free=1, base=1, cap=9, memory=100),
        now=NOW,
    )
    assert await store.active("token:", now=NOW) == {"token:c_a": first}
    assert set(await store.active("client_auth:", now=NOW)) == {"client_auth:pair:x"}
    assert set(await store.active("", now=NOW)) == {"token:c_a", "client_auth:pair:x"}
    # a failure inside its budget is remembered but makes nobody wait
    await store.update(
        "client_auth:pair:y",
        functools.partial(failure, at=NOW, free=5, base=1, cap=9, memory=100),
        now=NOW,
    )
    assert set(await store.active("client_auth:", now=NOW)) == {
        "client_auth:pair:x",
        "client_auth:pair:y",
    }
    assert set(await store.active("client_auth:", now=NOW, waiting=True)) == {"client_auth:pair:x"}
    assert await store.active("client_auth:", now=NOW + 1, waiting=True) == {}
    # a prefix is a prefix, not a pattern
    assert await store.active("token%", now=NOW) == {}
    assert await store.active("token_", now=NOW) == {}
    # forgotten ones are gone, and the next change starts from nothing
    assert await store.active("token:", now=first.forget_at) == {}
    seen: list[Penalty | None] = []

    def change(current: Penalty | None) -> Penalty:
        seen.append(current)
        return first

    await store.update("token:c_a", change, now=first.forget_at)
    assert seen == [None]
    await store.forget("client_auth:pair:x")
    await store.forget("never-there")
    assert set(await store.active("client_auth:", now=NOW)) == {"client_auth:pair:y"}


async def test_penalty_updates_under_a_race_lose_nothing(shared: Shared) -> None:
    store = shared.penalties
    rule = functools.partial(failure, at=NOW, free=5, base=1, cap=60, memory=600)
    failures = await asyncio.gather(
        *(store.update("client_auth:pair:race", rule, now=NOW) for _ in range(RACERS))
    )
    # each update saw every one before it: no failure lost, none counted twice
    assert sorted(p.strikes for p in failures) == list(range(1, RACERS + 1))
    rule = functools.partial(strike, at=NOW, window=WINDOW, cap=3600)
    strikes = await asyncio.gather(
        *(store.update("token:race", rule, now=NOW) for _ in range(RACERS))
    )
    assert {p.strikes for p in strikes} == {1}  # one window's strike counts once


# -- failed client authentication --------------------------------------------------------

ADDRESS = "198.51.100.7"
MAX_FREE = 3  # auth_limiter's max_failures


def auth_limiter(shared: Shared, clock: Clock | None = None) -> SharedClientAuthLimiter:
    return SharedClientAuthLimiter(
        shared.penalties,
        max_failures=3,
        max_clients=4,
        backoff=2,
        backoff_cap=60,
        memory=480,
        sync_interval=1,
        clock=clock or Clock(NOW),
    )


async def test_client_auth_failures_back_off_and_are_shared(shared: Shared) -> None:
    first, second = auth_limiter(shared), auth_limiter(shared)
    for _ in range(2):
        await first.failed(ADDRESS, "c_1", now=NOW)
    assert first.wait(ADDRESS, "c_1", now=NOW) == 0
    await first.failed(ADDRESS, "c_1", now=NOW)
    assert first.wait(ADDRESS, "c_1", now=NOW) == 2  # the third failure: wait 2 s
    assert second.wait(ADDRESS, "c_1", now=NOW) == 0  # it has not refreshed yet
    await second.refresh()
    assert second.wait(ADDRESS, "c_1", now=NOW) == 2
    await second.failed(ADDRESS, "c_1", now=NOW + 2)
    assert second.wait(ADDRESS, "c_1", now=NOW + 2) == 4  # doubled
    # another client at that address, and that client at another address, are untouched
    assert second.wait(ADDRESS, "c_2", now=NOW + 2) == 0
    assert second.wait("192.0.2.1", "c_1", now=NOW + 2) == 0
    # the client proves itself there: its failures are forgiven at every process
    await second.succeeded(ADDRESS, "c_1", now=NOW + 6)
    await first.refresh()
    assert first.wait(ADDRESS, "c_1", now=NOW + 2) == 0


async def test_a_sweep_over_client_ids_blocks_the_address(shared: Shared) -> None:
    one = auth_limiter(shared)
    for n in range(4):
        await one.failed(ADDRESS, f"c_{n}", now=NOW)
        await one.failed(ADDRESS, f"c_{n}", now=NOW)  # the same id again: not a new one
    assert one.wait(ADDRESS, "c_anything", now=NOW) == 2  # four ids: the address waits
    assert one.wait("192.0.2.1", "c_0", now=NOW) == 0


async def test_parallel_failures_at_the_budgets_edge_are_all_counted(shared: Shared) -> None:
    first, second = auth_limiter(shared), auth_limiter(shared)
    await asyncio.gather(
        *((first, second)[n % 2].failed(ADDRESS, "c_edge", now=NOW) for n in range(RACERS))
    )
    await first.refresh()
    # 50 failures, none lost: 2 s doubled 47 times, so the cap
    assert first.wait(ADDRESS, "c_edge", now=NOW) == 60
    [pair] = [p for k, p in (await shared.penalties.active("client_auth:pair", now=NOW)).items()]
    assert pair.strikes == RACERS


async def test_a_failure_says_when_it_begins_a_wait_and_only_then(shared: Shared) -> None:
    """What the audit log is told (`client.auth_throttled`): the failure that begins a wait,
    not the ones inside the budget, nor one that lengthens a wait in force, at any process."""
    first, second = auth_limiter(shared), auth_limiter(shared)
    for _ in range(2):
        assert await first.failed(ADDRESS, "c_1", now=NOW) is None  # inside the budget
    began = await first.failed(ADDRESS, "c_1", now=NOW)
    assert began == ClientAuthWait(seconds=2, by="client", failures=3)
    # another process that had not learnt of the wait yet lengthens it: nothing new began
    assert await second.failed(ADDRESS, "c_1", now=NOW + 1) is None
    assert second.wait(ADDRESS, "c_1", now=NOW + 1) == 4
    # once it is over, the next failure begins the next, longer wait
    again = await second.failed(ADDRESS, "c_1", now=NOW + 5)
    assert again == ClientAuthWait(seconds=8, by="client", failures=5)


async def test_a_sweep_begins_one_wait_for_the_address(shared: Shared) -> None:
    one = auth_limiter(shared)
    began = [await one.failed(ADDRESS, f"c_{n}", now=NOW) for n in range(6)]
    assert began[:3] == [None, None, None]
    assert began[3] == ClientAuthWait(seconds=2, by="address", failures=4)
    assert began[4:] == [None, None]  # the address already waits


async def test_parallel_failures_begin_one_wait(shared: Shared) -> None:
    first, second = auth_limiter(shared), auth_limiter(shared)
    began = await asyncio.gather(
        *((first, second)[n % 2].failed(ADDRESS, "c_burst", now=NOW) for n in range(RACERS))
    )
    assert [wait for wait in began if wait is not None] == [
        ClientAuthWait(seconds=2, by="client", failures=MAX_FREE)
    ]


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
    # Never more than the budget. Fewer may pass: each attempt charges the user's key, then
    # the address's, and under a burst the two counts can come back in different orders, so
    # an attempt that is within the budget on one key may be past it on the other (refusing
    # too many is the safe way to lose that race).
    assert 1 <= waits.count(0) <= config.login_max_failures
    assert all(wait >= 1 for wait in waits if wait)


async def test_unreachable_redis_throttle_refuses_rather_than_lets_guesses_through() -> None:
    store = RedisThrottleStore("redis://127.0.0.1:1/0", timeout=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            await store.hit("user:alice", now=NOW, window=60)
    finally:
        await store.close()
