"""A PostgreSQL instance of the test's own, to stop, start and freeze at will.

Fault tests must never touch the shared cluster at 127.0.0.1:5432: they run `initdb` and
`pg_ctl` from Debian's PostgreSQL binaries on a temporary data folder and a free port. As
root the server runs as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from e2e_server import free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PG_TIMEOUT = 60.0


def postgres_binaries() -> Path | None:
    """The newest Debian PostgreSQL bin folder with initdb and pg_ctl, or None."""
    for folder in PG_BIN_DIRS:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def missing_reason() -> str | None:
    """Why a private PostgreSQL cannot be made here, or None when it can."""
    if postgres_binaries() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
    return None


@dataclass
class PrivatePostgres:
    """One throwaway cluster: `start()`, `stop()`, `pause()` (SIGSTOP), `resume()`."""

    bin: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PG_TIMEOUT, check=False
        )
        if done.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}\n{tail}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c shared_buffers=16MB -c max_connections=60"
        )
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        found = [postmaster]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rpartition(")")[2].split()[1])
                if parent == postmaster:
                    found.append(int(entry.name))
        return found

    def pause(self) -> None:
        """Freeze every PostgreSQL process: connections stay open and nothing answers."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster, stopped and deleted afterwards."""
    folder = postgres_binaries()
    assert folder is not None, missing_reason()
    # not under pytest's tmp_path: that is private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="ostiary-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    cluster = PrivatePostgres(bin=folder, root=root, port=free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.resume()
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
