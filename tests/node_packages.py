"""Node packages for the tests that drive real JavaScript clients: `npm ci` from a committed
lockfile, once per change of the lockfile, shared by the pytest-xdist workers."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

NPM_TIMEOUT: Final = 300  # seconds for one `npm ci`


def node_with_packages(folder: Path, label: str) -> str:
    """The node executable, with `folder/node_modules` installed from its lockfile; skips
    (with the reason) when node, npm or the install is missing, which CI turns into a
    failure. `label` names the folder in those reasons."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (.ci/run installs Debian's nodejs and npm)")
    lock = (folder / "package-lock.json").read_bytes()
    want = hashlib.sha256(lock + (folder / "package.json").read_bytes()).hexdigest()
    stamp = folder / "node_modules" / ".ostiary-installed"
    # pytest-xdist workers share the folder: one installs while the others wait.
    with (folder / ".install.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not stamp.is_file() or stamp.read_text() != want:
            try:
                done = subprocess.run(
                    [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.skip(f"npm ci in {label} took over {NPM_TIMEOUT}s")
            if done.returncode != 0:
                pytest.skip(f"npm ci in {label} failed: {done.stderr.strip()[-2000:]}")
            stamp.write_text(want)
    return node
