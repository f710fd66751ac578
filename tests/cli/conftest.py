"""Fixtures for the `ostiary` command tests: `main()` in-process, keys on disk."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cli_run import KeyFiles, Result, Run, write_key

from ostiary.cli import main
from ostiary.jose.jwk import JWK


@pytest.fixture
def ostiary(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Call `main(args)` as the console script would; `stdin=` feeds bytes to stdin."""

    def run(*args: str, stdin: bytes | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()
        status = main(list(args))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


@pytest.fixture
def es256(tmp_path: Path) -> KeyFiles:
    """An ES256 key (kid "es-1") as private and public JWK files."""
    return write_key(tmp_path, "es256", JWK.generate("EC", crv="P-256", alg="ES256", kid="es-1"))


@pytest.fixture
def other_es256(tmp_path: Path) -> KeyFiles:
    """A second, unrelated ES256 key with the same kid: it must never verify es256's tokens."""
    return write_key(tmp_path, "other", JWK.generate("EC", crv="P-256", alg="ES256", kid="es-1"))
