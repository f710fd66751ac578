"""The back-off rules every shared limit follows (`ostiary.oauth.rate_limits`), as tables:
what a strike at the token endpoint costs, and what one more failed authentication costs."""

from __future__ import annotations

import pytest

from ostiary.oauth.rate_limits import Penalty, backoff, failure, strike

W = 60  # a token window
T = 1_900_000_020  # the start of a window (a multiple of 60)


def strikes(*offsets: int, cap: int = 3600) -> list[int]:
    """Strike at each offset from T in turn; the seconds refused after each, from its strike."""
    penalty: Penalty | None = None
    waits = []
    for offset in offsets:
        penalty = strike(penalty, at=T + offset, window=W, cap=cap)
        waits.append(penalty.until - (T + offset))
    return waits


def test_a_first_strike_refuses_until_the_window_ends() -> None:
    assert strikes(20) == [40]
    assert strike(None, at=T + 20, window=W, cap=3600) == Penalty(
        strikes=1, struck_at=T, until=T + W, forget_at=T + 2 * W
    )


def test_a_client_that_does_not_slow_down_waits_twice_as_long_each_time() -> None:
    # each strike in the first window after the previous penalty: 1, 2, 4, 8 windows
    penalty = None
    starts = []
    at = T
    for _ in range(5):
        penalty = strike(penalty, at=at, window=W, cap=10 * 3600)
        starts.append((penalty.strikes, (penalty.until - at) // W))
        at = penalty.until  # it comes back the moment it may, and overruns again
    assert starts == [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16)]


def test_the_back_off_is_capped() -> None:
    penalty = None
    at = T
    for _ in range(40):  # no integer overflow, no growth past the cap
        penalty = strike(penalty, at=at, window=W, cap=600)
        at = penalty.until
    assert penalty is not None and penalty.until - penalty.struck_at == W + 600


def test_a_window_within_budget_after_the_penalty_forgets_it() -> None:
    first = strike(None, at=T + 5, window=W, cap=3600)
    # the window after the penalty passes without a strike; the one after that strikes
    again = strike(first, at=first.until + W + 5, window=W, cap=3600)
    assert again.strikes == 1


@pytest.mark.parametrize("offset", [0, 30, 59])
def test_a_strike_inside_a_penalty_or_reported_twice_changes_nothing(offset: int) -> None:
    first = strike(None, at=T, window=W, cap=3600)
    second = strike(first, at=first.until, window=W, cap=3600)  # two windows
    assert strike(second, at=second.struck_at + offset, window=W, cap=3600) == second
    assert strike(second, at=second.until - 1, window=W, cap=3600) == second


def test_no_back_off_with_a_zero_cap() -> None:
    penalty = None
    at = T
    for _ in range(5):
        penalty = strike(penalty, at=at, window=W, cap=0)
        assert penalty.until == penalty.struck_at + W
        at = penalty.until


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(1, 0), (9, 0), (10, 1), (11, 2), (12, 4), (19, 512), (20, 900), (10_000, 900)],
)
def test_failure_backoff_table(failures: int, wait: int) -> None:
    assert backoff(failures, free=10, base=1, cap=900) == wait


def test_failures_are_counted_then_forgotten_after_their_memory() -> None:
    penalty = None
    for i in range(12):
        penalty = failure(penalty, at=T + i, free=10, base=1, cap=900, memory=7200)
    assert penalty is not None
    assert (penalty.strikes, penalty.struck_at, penalty.until) == (12, T + 11, T + 11 + 4)
    assert penalty.forget_at == T + 11 + 7200
    later = failure(penalty, at=penalty.forget_at, free=10, base=1, cap=900, memory=7200)
    assert (later.strikes, later.until) == (1, penalty.forget_at)  # counted afresh


def test_a_failure_reported_late_keeps_the_latest_time() -> None:
    penalty = failure(None, at=T + 10, free=1, base=5, cap=900, memory=7200)
    late = failure(penalty, at=T + 3, free=1, base=5, cap=900, memory=7200)
    assert (late.strikes, late.struck_at, late.until) == (2, T + 10, T + 20)


@pytest.mark.parametrize(("until", "now", "wait"), [(100, 100, 0), (100, 99.5, 1), (100, 40, 60)])
def test_penalty_wait_rounds_up(until: int, now: float, wait: int) -> None:
    assert Penalty(strikes=1, struck_at=0, until=until, forget_at=until).wait(now) == wait
