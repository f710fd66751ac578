"""Suite-wide test policy and shared fixtures.

Under `CI=true` (as CI sets it) a skipped test is a failure: a test that cannot run in CI
would otherwise hide a missing install step. xfail outcomes are left as pytest decides them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def is_ci() -> bool:
    """True when the suite runs in CI, where skips are not allowed."""
    return os.environ.get("CI") == "true"


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (path, lineno, "Skipped: reason")
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # An xfailed test is also reported as skipped; `wasxfail` tells it apart.
    if is_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skips: {_skip_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if is_ci() and report.skipped:  # a module-level skip or importorskip
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which allows no skips: {_skip_reason(report)}"
    return report


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """`../shared/vectors` beside the repository (RFC 7520 and Wycheproof JSON)."""
    path = SHARED / "vectors"
    if not path.is_dir():
        pytest.skip(f"known-answer vectors not found at ../shared/vectors (looked in {path})")
    return path
