"""`Argon2PasswordHasher`: Argon2id PHC strings, no exceptions on bad input, no user oracle."""

from __future__ import annotations

import concurrent.futures
import threading
import unicodedata
from typing import Any, Literal

import argon2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostiary.oauth.context import PasswordHasher
from ostiary.server.passwords import MAX_PASSWORD_LENGTH, Argon2PasswordHasher

# Cheap parameters keep the suite fast; the defaults are checked on their own below.
FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


@pytest.fixture(scope="module")
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher(**FAST)


def test_fits_the_core_protocol(hasher: Argon2PasswordHasher) -> None:
    protocol: PasswordHasher = hasher
    assert protocol.verify(protocol.hash("correct horse"), "correct horse")


def test_default_parameters_are_rfc_9106_argon2id() -> None:
    phc = Argon2PasswordHasher().hash("correct horse battery staple")
    assert phc.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    params = argon2.extract_parameters(phc)
    assert (params.salt_len, params.hash_len) == (16, 32)


def test_round_trip_and_fresh_salt(hasher: Argon2PasswordHasher) -> None:
    first, second = hasher.hash("s3cret!"), hasher.hash("s3cret!")
    assert first != second
    assert hasher.verify(first, "s3cret!")
    assert hasher.verify(second, "s3cret!")
    assert "s3cret!" not in first


@pytest.mark.parametrize(
    "attempt",
    ["s3cret", "s3cret!!", "S3cret!", " s3cret!", "s3cret!\n", "", "x" * (MAX_PASSWORD_LENGTH + 1)],
    ids=["prefix", "suffix", "case", "leading-space", "newline", "empty", "oversized"],
)
def test_wrong_password_is_false(hasher: Argon2PasswordHasher, attempt: str) -> None:
    assert hasher.verify(hasher.hash("s3cret!"), attempt) is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=1024,t=1,p=1$",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$AAAA",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43,
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "pbkdf2_sha256$600000$salt$hash",
        "$argon2id$" + "v" * 100_000,
    ],
    ids=["empty", "text", "truncated", "short-tag", "huge-memory", "bcrypt", "pbkdf2", "oversized"],
)
def test_damaged_or_foreign_hash_is_false_never_an_exception(
    hasher: Argon2PasswordHasher, stored: str
) -> None:
    assert hasher.verify(stored, "s3cret!") is False
    assert hasher.needs_rehash(stored) is True


def test_unicode_forms_are_one_password(hasher: Argon2PasswordHasher) -> None:
    composed = "caf\u00e9 na\u00efve"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed)
    assert hasher.verify(hasher.hash(decomposed), composed)


@pytest.mark.parametrize(
    ("length", "ok"), [(1, True), (MAX_PASSWORD_LENGTH, True), (MAX_PASSWORD_LENGTH + 1, False)]
)
def test_length_bounds(hasher: Argon2PasswordHasher, length: int, ok: bool) -> None:
    password = "p" * length
    if ok:
        assert hasher.verify(hasher.hash(password), password)
    else:
        with pytest.raises(ValueError, match="longer than"):
            hasher.hash(password)


def test_empty_password_is_refused(hasher: Argon2PasswordHasher) -> None:
    with pytest.raises(ValueError, match="empty"):
        hasher.hash("")


def test_needs_rehash_follows_the_parameters(hasher: Argon2PasswordHasher) -> None:
    assert hasher.needs_rehash(hasher.hash("pw")) is False
    stronger = Argon2PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    assert stronger.needs_rehash(hasher.hash("pw")) is True
    assert stronger.verify(hasher.hash("pw"), "pw")  # old hashes keep working until upgraded


def test_argon2i_hash_verifies_but_needs_rehash(hasher: Argon2PasswordHasher) -> None:
    legacy = argon2.PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.I
    ).hash("pw")
    assert legacy.startswith("$argon2i$")
    assert hasher.verify(legacy, "pw")
    assert hasher.needs_rehash(legacy)


def test_dummy_verify_is_always_false(hasher: Argon2PasswordHasher) -> None:
    assert hasher.dummy_verify() is False
    assert hasher.dummy_verify("s3cret!") is False
    assert hasher.dummy_verify("x" * (MAX_PASSWORD_LENGTH * 10)) is False


class _CountingArgon2(argon2.PasswordHasher):
    """A real Argon2 hasher that also records the parameters of every hash it verifies."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verified: list[argon2.Parameters] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(argon2.extract_parameters(str(hash)))
        return super().verify(hash, password)


def test_unknown_user_does_the_argon2_work_of_a_known_user() -> None:
    """A login for a missing user (or an empty password) runs one Argon2id verification with
    the same parameters as a wrong password for a real user, so timing reveals nothing.
    Counted, not timed: timed tests are flaky on shared machines."""
    params = {"time_cost": 2, "memory_cost": 16 * 1024, "parallelism": 1}
    hasher = Argon2PasswordHasher(**params)
    counting = _CountingArgon2(**params, hash_len=32, salt_len=16, type=argon2.Type.ID)
    hasher._argon2 = counting
    stored = hasher.hash("s3cret!")
    assert hasher.verify(stored, "wrong") is False
    assert hasher.dummy_verify("wrong") is False
    assert hasher.verify(stored, "") is False
    assert len(counting.verified) == 3
    assert counting.verified[0] == counting.verified[1] == counting.verified[2]
    assert counting.verified[0] == argon2.extract_parameters(stored)


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 0, "memory_cost": 1024, "parallelism": 1},
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 0},
        {"time_cost": 1, "memory_cost": 31, "parallelism": 4},
    ],
    ids=["no-passes", "no-lanes", "too-little-memory"],
)
def test_unsafe_parameters_are_refused(params: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least"):
        Argon2PasswordHasher(**params)


@settings(max_examples=25, deadline=None)
@given(password=st.text(min_size=1, max_size=64))
def test_any_text_round_trips(password: str) -> None:
    hasher = Argon2PasswordHasher(**FAST)
    phc = hasher.hash(password)
    assert hasher.verify(phc, password)
    assert not hasher.verify(phc, password + "x")


class _PeakArgon2(argon2.PasswordHasher):
    """A real Argon2 hasher that records how many verifications ran at the same time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


def test_a_burst_of_logins_queues_instead_of_exhausting_memory() -> None:
    """Each Argon2id check holds its memory cost: at most `max_concurrent` run at once."""
    params = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}
    hasher = Argon2PasswordHasher(**params, max_concurrent=2)
    peak = _PeakArgon2(**params, hash_len=32, salt_len=16, type=argon2.Type.ID)
    hasher._argon2 = peak
    stored = hasher.hash("s3cret!")
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda n: hasher.verify(stored, f"guess{n}"), range(24)))
    assert results == [False] * 24
    assert peak.peak <= 2
