"""Client secrets: 256-bit, stored as `sha256$...`, checked in constant time, never raising."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.client_secrets import (
    MAX_SECRET_LENGTH,
    generate_client_secret,
    hash_client_secret,
    verify_client_secret,
)


def test_generated_secret_has_256_random_bits() -> None:
    secret = generate_client_secret()
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert len({generate_client_secret() for _ in range(100)}) == 100


def test_hash_is_tagged_sha256_and_hides_the_secret() -> None:
    secret = generate_client_secret()
    stored = hash_client_secret(secret)
    assert stored.startswith("sha256$")
    assert len(stored) == len("sha256$") + 43
    assert secret not in stored
    assert hash_client_secret(secret) == stored  # deterministic: found by comparison


def test_right_secret_verifies() -> None:
    secret = generate_client_secret()
    assert verify_client_secret(secret, hash_client_secret(secret))


@pytest.mark.parametrize(
    "presented",
    ["", "wrong", "x" * (MAX_SECRET_LENGTH + 1), "\ud800", "s3cret "],
    ids=["empty", "wrong", "oversized", "lone-surrogate", "trailing-space"],
)
def test_wrong_secret_is_refused(presented: str) -> None:
    assert not verify_client_secret(presented, hash_client_secret("s3cret"))


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "s3cret",  # a plaintext secret in the database must not verify
        "sha256$",
        "md5$" + hash_client_secret("s3cret")[7:],
        hash_client_secret("s3cret")[:-1],
        hash_client_secret("s3cret") + "A",
        "sha256$\u00e9\u00e9",
    ],
    ids=["empty", "plaintext", "no-digest", "other-scheme", "truncated", "extended", "non-ascii"],
)
def test_damaged_or_foreign_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_client_secret("s3cret", stored)


def test_non_string_input_is_refused_not_raised() -> None:
    stored = hash_client_secret("s3cret")
    assert not verify_client_secret(b"s3cret", stored)  # type: ignore[arg-type]
    assert not verify_client_secret("s3cret", None)  # type: ignore[arg-type]


def test_empty_secret_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        hash_client_secret("")


@given(st.text(min_size=1, max_size=MAX_SECRET_LENGTH), st.text(max_size=MAX_SECRET_LENGTH))
def test_only_the_hashed_secret_verifies(secret: str, other: str) -> None:
    stored = hash_client_secret(secret)
    assert verify_client_secret(secret, stored)
    assert verify_client_secret(other, stored) is (other == secret)
