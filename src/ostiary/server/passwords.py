"""Users' passwords as Argon2id PHC strings (RFC 9106), behind `oauth.context.PasswordHasher`."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import unicodedata
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PASSWORD_LENGTH: Final = 1024
"""Longest password accepted, in characters: long passphrases fit; megabyte inputs do not."""

# RFC 9106 §4, second recommended option (for memory-constrained hosts): Argon2id, t=3,
# m=64 MiB, p=4, 128-bit salt, 256-bit tag. About 0.1 s per hash on one core.
DEFAULT_TIME_COST: Final = 3
DEFAULT_MEMORY_COST: Final = 64 * 1024  # KiB
DEFAULT_PARALLELISM: Final = 4


class Argon2PasswordHasher:
    """Hash and check users' passwords with Argon2id.

    `verify` never raises for a wrong password or a damaged hash; `dummy_verify` does the same
    work for a user who does not exist, so the time a login takes does not reveal which
    usernames are registered. Construct one per process: it hashes a random password once.
    """

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrent: int | None = None,
    ) -> None:
        # Each check holds memory_cost of RAM: a burst of logins must queue, not exhaust memory
        # (40 threadpool workers x 64 MiB would be 2.5 GiB).
        self._slots = threading.BoundedSemaphore(max_concurrent or max(2, os.cpu_count() or 2))
        if time_cost < 1 or parallelism < 1:
            raise ValueError("time_cost and parallelism must be at least 1")
        if memory_cost < 8 * parallelism:  # RFC 9106 §3.1: m >= 8 * p KiB
            raise ValueError("memory_cost must be at least 8 KiB per lane (8 * parallelism)")
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # Made now, not on the first unknown user, so that first miss costs what later ones do.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))

    def hash(self, password: str) -> str:
        """The PHC string (`$argon2id$v=19$m=...`) of `password`, with a fresh random salt.

        `ValueError` for an empty password or one longer than `MAX_PASSWORD_LENGTH`.
        """
        if not password:
            raise ValueError("the password is empty")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
        with self._slots:
            return self._argon2.hash(_normalize(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches `password_hash`; False otherwise, never an exception."""
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            return self.dummy_verify()
        try:
            with self._slots:
                return self._argon2.verify(password_hash, _normalize(password))
        except (VerificationError, InvalidHashError):  # mismatch, damaged or foreign hash
            return False

    def dummy_verify(self, password: str = "") -> bool:
        """Spend what `verify` spends on a real user, then return False (unknown username)."""
        with contextlib.suppress(VerificationError, InvalidHashError), self._slots:
            self._argon2.verify(self._dummy_hash, _normalize(password[:MAX_PASSWORD_LENGTH]))
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters (or is not ours): after a
        successful login, store `hash(password)` in its place."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True


def _normalize(password: str) -> str:
    # RFC 8265 §4.2 (OpaqueString): NFC, so "é" typed precomposed or as e + U+0301 is one
    # password whichever keyboard, browser or terminal produced it.
    return unicodedata.normalize("NFC", password)
