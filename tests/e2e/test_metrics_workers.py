"""`GET /metrics` of a real `ostiary serve --workers 2` reports the whole server: a scrape that
reaches either worker adds up both workers' counters and histograms, the pool gauges of the
workers running now, and keeps the counts of a worker killed with SIGKILL (its replacement
starts from nothing: no count lost, none counted twice). The supervisor's private folder
(0700) is gone once it stops.

Every request goes on a connection of its own, so the two workers (both accepting on one
socket) share them; the test drives until both have answered, and reads which worker
answered what from their files, never from the scrape it checks.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import httpx
from e2e_server import SCOPES, OstiaryServer, start_server, stop_server
from prometheus_client.parser import text_string_to_metric_families

from ostiary.cli._serve import WORKER_METRICS
from ostiary.server.shared_metrics import WorkerFigures, read_folder

WAIT = 30.0  # seconds for a worker to start
MAX_ROUNDS = 40  # bounded: ten token requests a round until both workers have answered some
SCRAPES = 6
TOKENS = ("tokens", "client_credentials")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def workers_of(supervisor: int) -> dict[int, Path]:
    """The worker processes of `supervisor` and the metrics folder each was handed."""
    found: dict[int, Path] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
            if int(stat_line.rpartition(")")[2].split()[1]) != supervisor:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # it ended while we looked
        if b"spawn_main" not in command:  # multiprocessing's resource tracker is a child too
            continue
        prefix = f"{WORKER_METRICS}=".encode()
        for variable in environ:
            if variable.startswith(prefix):
                found[int(entry.name)] = Path(variable[len(prefix) :].decode())
    return found


def wait_for(what: str, ready: Any) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = ready()
        if result:
            return result
        time.sleep(0.1)  # bounded polling of real processes
    raise AssertionError(f"timed out waiting for {what}")


def scrape(server: OstiaryServer) -> Samples:
    response = httpx.get(f"{server.base_url}/metrics", timeout=10)  # a connection of its own
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def answered_tokens(figures: list[WorkerFigures]) -> list[float]:
    return [worker.rows.get(TOKENS, (0.0,))[0] for worker in figures]


def live_pool_size(figures: list[WorkerFigures]) -> float:
    return sum(w.rows.get(("pool", "size"), (0.0,))[0] for w in figures if w.alive)


def test_a_scrape_at_either_worker_reports_both_and_survives_a_killed_worker(
    tmp_path: Path,
) -> None:
    server = start_server("sqlite", tmp_path / "server", {}, args=["--workers", "2"])
    assert server.process is not None
    try:
        workers = wait_for("two workers", lambda: len(workers_of(server.process.pid)) == 2)
        workers = workers_of(server.process.pid)
        (folder,) = set(workers.values())
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        client = server.create_client(
            name="Scraped", grant_types="client_credentials", scopes=SCOPES
        )
        token_url = f"{server.base_url}/token"
        good = (client["client_id"], client["client_secret"])
        wrong = (client["client_id"], "not-the-secret")
        issued = refused = 0
        for _ in range(MAX_ROUNDS):
            for _ in range(10):
                ok = httpx.post(token_url, data={"grant_type": "client_credentials"}, auth=good)
                assert ok.status_code == 200, ok.text
                issued += 1
            bad = httpx.post(token_url, data={"grant_type": "client_credentials"}, auth=wrong)
            assert bad.status_code == 401
            refused += 1
            if all(answered_tokens(read_folder(folder))):
                break
        by_worker = answered_tokens(read_folder(folder))
        assert len(by_worker) == 2 and all(by_worker), by_worker
        pool_size = live_pool_size(read_folder(folder))
        assert pool_size > 0

        def check(found: Samples, scrapes: int) -> None:
            requests = "ostiary_http_requests_total"
            duration = "ostiary_http_request_duration_seconds"
            assert value(found, "ostiary_tokens_issued_total", grant_type="client_credentials") == (
                issued
            )
            assert value(found, "ostiary_oauth_errors_total", error="invalid_client") == refused
            assert value(found, requests, route="/token", status="200") == issued
            assert value(found, requests, route="/token", status="401") == refused
            assert value(found, f"{duration}_count", route="/token") == issued + refused
            assert value(found, f"{duration}_bucket", route="/token", le="+Inf") == (
                issued + refused
            )
            assert value(found, f"{duration}_sum", route="/token") > 0
            # each scrape is counted once it has answered, wherever it landed
            assert value(found, requests, route="/metrics", status="200") == scrapes
            assert value(found, "ostiary_db_pool_size") == pool_size

        scrapes = 0
        for _ in range(SCRAPES):
            check(scrape(server), scrapes)
            scrapes += 1

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            pids = workers_of(server.process.pid)
            figures = read_folder(folder)
            live = [w for w in figures if w.alive and ("pool", "size") in w.rows]
            return victim not in pids and len(pids) == 2 and len(live) == 2

        wait_for("a replacement worker", replaced)
        figures = read_folder(folder)
        assert len(figures) == 3
        dead = [w for w in figures if not w.alive]
        assert len(dead) == 1 and dead[0].name.startswith(f"{victim}-")
        for _ in range(SCRAPES):
            check(scrape(server), scrapes)
            scrapes += 1
        for _ in range(10):
            ok = httpx.post(token_url, data={"grant_type": "client_credentials"}, auth=good)
            assert ok.status_code == 200, ok.text
            issued += 1
        check(scrape(server), scrapes)
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log_tail()
    assert not folder.exists()
    assert "Traceback" not in server.log()
