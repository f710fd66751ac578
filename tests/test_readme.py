"""The CI contract: README's Quick start, `.ci/run`, and the no-skips-in-CI policy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CI_RUN = REPO / ".ci" / "run"
BASH = shutil.which("bash")


def quick_start_commands(readme: str) -> list[str]:
    """The command lines of the ```sh block in the README's Quick start section."""
    lines = iter(readme.splitlines())
    for line in lines:
        if re.fullmatch(r"#+\s+Quick start\s*", line, re.I):
            break
    else:
        raise AssertionError("README.md has no Quick start section")
    for line in lines:
        assert not line.startswith("#"), "the Quick start section has no ```sh block"
        if line.rstrip() == "```sh":
            break
    commands: list[str] = []
    for line in lines:
        if line.startswith("```"):
            return commands
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    raise AssertionError("the Quick start ```sh block is not closed")


def test_readme_opens_with_quick_start() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+\s+(.*?)\s*$", readme, re.M)
    assert len(headings) >= 2, "README.md needs a title and a Quick start section"
    assert headings[1].lower() == "quick start", f"first section is {headings[1]!r}"


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(commands) == 2, commands
    assert "pytest" not in commands[0], "the first command starts the project, not the tests"
    assert "-m pytest" in commands[1], "the second command runs the test suite"
    assert ".[dev]" in commands[1], "the second command installs the test dependencies"


def test_ci_run_is_executable_strict_bash() -> None:
    text = CI_RUN.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable (git mode 100755)"


@pytest.mark.parametrize(
    "check",
    [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy src"],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_ci_run_runs_linters(check: str) -> None:
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert check in lines


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_ci_run_uses_readme_test_command_not_a_copy() -> None:
    readme_command = quick_start_commands((REPO / "README.md").read_text(encoding="utf-8"))[1]
    assert readme_command not in CI_RUN.read_text(encoding="utf-8"), ".ci/run holds a copy"
    out = subprocess.run(
        [str(BASH), str(CI_RUN), "--print-test-command"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == readme_command + "\n"


QUICK_START_FIXTURES = {
    "two-commands": ("# T\n\n## Quick start\n```sh\nrun app\nrun tests\n```\n", "run tests"),
    "blank-and-comment-lines": (
        "# T\n## Quick start\n\n```sh\n# start\nrun app\n\n# test\nrun tests\n```\n",
        "run tests",
    ),
    "later-sh-block-ignored": (
        "# T\n## Quick start\n```sh\nrun app\n```\n## More\n```sh\nx\nrun tests\n```\n",
        None,
    ),
    "no-quick-start": ("# T\n## Usage\n```sh\nrun app\nrun tests\n```\n", None),
}


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.parametrize("name", list(QUICK_START_FIXTURES))
def test_ci_run_extracts_second_command(name: str, tmp_path: Path) -> None:
    readme, expected = QUICK_START_FIXTURES[name]
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI_RUN, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    out = subprocess.run(
        [str(BASH), str(tmp_path / ".ci" / "run"), "--print-test-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    if expected is None:
        assert out.returncode != 0
        assert "no second command" in out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected + "\n"
        assert quick_start_commands(readme)[1] == expected


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason=".ci/run would try to install node and npm first",
)
@pytest.mark.parametrize(
    ("test_exit", "run_exit", "message"),
    [(5, 1, "collected no tests"), (3, 3, "the test command failed")],
    ids=["no-tests-is-failure", "failure-passes-through"],
)
def test_ci_run_fails_when_tests_fail(
    test_exit: int, run_exit: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI_RUN, tmp_path / ".ci" / "run")
    readme = f"# T\n## Quick start\n```sh\nrun app\nexit {test_exit}\n```\n"
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    out = subprocess.run(
        [str(BASH), str(tmp_path / ".ci" / "run")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == run_exit
    assert message in out.stderr


POLICY_TESTS = """
import pytest

@pytest.fixture
def absent():
    pytest.skip("fixture says absent")

def test_skip():
    pytest.skip("node is missing")

@pytest.mark.skipif(True, reason="marker says absent")
def test_skipif():
    pass

def test_fixture_skip(absent):
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail_fails():
    assert False

@pytest.mark.xfail(reason="fixed", strict=True)
def test_strict_xfail_passes():
    pass

@pytest.mark.xfail(reason="flaky", strict=False)
def test_lax_xfail_passes():
    pass

def test_imperative_xfail():
    pytest.xfail("not yet")

def test_pass():
    pass
"""

SKIPPED_MODULE = 'import pytest\npytest.skip("whole module absent", allow_module_level=True)\n'

# test name -> (outcome without CI, outcome with CI=true)
POLICY_OUTCOMES = {
    "test_skip": ("skipped", "failed"),
    "test_skipif": ("skipped", "error"),
    "test_fixture_skip": ("skipped", "error"),
    "test_xfail_fails": ("xfailed", "xfailed"),
    "test_strict_xfail_passes": ("failed", "failed"),
    "test_lax_xfail_passes": ("passed", "passed"),
    "test_imperative_xfail": ("xfailed", "xfailed"),
    "test_pass": ("passed", "passed"),
    "test_skipped_module": ("skipped", "error"),
}


def _outcome(case: ET.Element) -> str:
    for child in case:
        if child.tag in ("failure", "error"):
            return "failed" if child.tag == "failure" else "error"
        if child.tag == "skipped":
            return "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
    return "passed"


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_ci_turns_skips_into_failures(ci: bool, tmp_path: Path) -> None:
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
    (tmp_path / "test_policy.py").write_text(POLICY_TESTS, encoding="utf-8")
    (tmp_path / "test_skipped_module.py").write_text(SKIPPED_MODULE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci:
        env["CI"] = "true"
    junit = tmp_path / "junit.xml"
    args = ["-p", "no:cacheprovider", "-p", "no:xdist", "--continue-on-collection-errors"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--junitxml={junit}", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    outcomes = {c.get("name"): _outcome(c) for c in ET.parse(junit).iter("testcase")}  # noqa: S314 (ours)
    expected = {name: pair[ci] for name, pair in POLICY_OUTCOMES.items()}
    assert outcomes == expected, run.stdout
    assert run.returncode == 1
    if ci:
        for reason in ("node is missing", "marker says absent", "whole module absent"):
            assert f"allows no skips: Skipped: {reason}" in run.stdout
