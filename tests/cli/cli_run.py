"""Helpers for the `ostiary` command tests: results, key files, the fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ostiary.jose.jwk import JWK

NOW = 1_800_000_000
"""The fixed clock every test passes as `--now` (2027-01-15 08:00:00 UTC)."""


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str


Run = Callable[..., Result]
"""The `ostiary` fixture: `ostiary("jwt", "decode", token, stdin=b"...")` -> `Result`."""


@dataclass(frozen=True)
class KeyFiles:
    key: JWK
    private: Path
    public: Path


def write_key(folder: Path, name: str, key: JWK) -> KeyFiles:
    private = folder / f"{name}.jwk"
    public = folder / f"{name}.pub.jwk"
    private.write_text(key.to_json(private=True), encoding="utf-8")
    if key.kty != "oct":
        public.write_text(key.public().to_json(), encoding="utf-8")
    return KeyFiles(key, private, public)


def assert_one_line_error(result: Result, fragment: str) -> None:
    """Exit 1, nothing on stdout, one `ostiary: error:` line naming the problem, no traceback."""
    assert result.status == 1, result
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("ostiary: error: "), result.err
    assert fragment in result.err, result.err
    assert "Traceback" not in result.err
