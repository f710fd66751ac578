"""The installed `ostiary` console script, end to end in real subprocesses, and `--help`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import NOW, Run

import ostiary

SCRIPT = Path(sys.executable).parent / ("ostiary.exe" if os.name == "nt" else "ostiary")


def run_script(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(f"the console script is not installed next to the interpreter ({SCRIPT})")
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=60,
    )


def test_version() -> None:
    result = run_script("--version")
    assert (result.returncode, result.stdout) == (0, f"ostiary {ostiary.__version__}\n")


def test_no_command_prints_help_and_exits_2() -> None:
    result = run_script()
    assert result.returncode == 2
    assert "usage: ostiary" in result.stderr
    assert "jwt" in result.stderr


def test_keys_encode_verify_decode_through_the_script(tmp_path: Path) -> None:
    generated = run_script("keys", "generate", "--alg", "ES256", "--out", "es256.jwk", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    (tmp_path / "es256.pub.jwk").write_text(generated.stdout, encoding="utf-8")
    assert (tmp_path / "es256.jwk").stat().st_mode & 0o777 == 0o600
    clock = ("--now", str(NOW))
    encoded = run_script(
        "jwt",
        "encode",
        "--key",
        "es256.jwk",
        "--exp",
        "15m",
        "-",
        *clock,
        stdin=b'{"sub": "u_123", "aud": "billing"}',
        cwd=tmp_path,
    )
    assert encoded.returncode == 0, encoded.stderr
    token = encoded.stdout.strip()
    verified = run_script(
        "jwt",
        "verify",
        "-",
        "--jwks",
        "es256.pub.jwk",
        "--alg",
        "ES256",
        "--audience",
        "billing",
        *clock,
        stdin=token.encode(),
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout) == {
        "sub": "u_123",
        "aud": "billing",
        "iat": NOW,
        "exp": NOW + 900,
    }
    late = run_script(
        "jwt",
        "verify",
        token,
        "--key",
        "es256.pub.jwk",
        "--alg",
        "ES256",
        "--audience",
        "billing",
        "--now",
        str(NOW + 900),
        cwd=tmp_path,
    )
    assert (late.returncode, late.stdout) == (1, "")
    assert late.stderr == "ostiary: error: token rejected: the token has expired\n"
    decoded = run_script("jwt", "decode", token, *clock)
    assert decoded.returncode == 0
    assert "expires in 15 minutes" in decoded.stdout
    assert "Signature NOT verified: no key given" in decoded.stdout


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "e30.bm90IGpzb24.x", "eyJhbGciOiJub25lIn0.WzFd.", "\x1b[31m.x.y"],
    ids=["garbage", "bad-base64", "bad-claims", "claims-array", "escape"],
)
def test_hostile_tokens_give_one_line_and_exit_1(token: str) -> None:
    result = run_script("jwt", "decode", token)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("ostiary: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr


def test_demo_through_the_script() -> None:
    result = run_script("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every forgery was refused." in result.stdout


HELP_PAGES = {
    "": "jwt",
    "jwt": "encode",
    "jwt encode": "--claims-file",
    "jwt decode": "--json",
    "jwt verify": "--audience",
    "keys": "generate",
    "keys generate": "--out",
    "keys thumbprint": "--uri",
    "demo": "refused",
}


@pytest.mark.parametrize("command", list(HELP_PAGES), ids=lambda c: c or "ostiary")
def test_every_command_has_help(ostiary: Run, command: str) -> None:
    result = ostiary(*command.split(), "--help")
    assert result.status == 0
    assert result.out.startswith(f"usage: ostiary {command}".rstrip())
    assert HELP_PAGES[command] in result.out


@pytest.mark.parametrize("group", ["jwt", "keys"])
def test_group_without_subcommand_shows_its_help(ostiary: Run, group: str) -> None:
    result = ostiary(group)
    assert result.status == 2
    assert result.out.startswith(f"usage: ostiary {group}")
