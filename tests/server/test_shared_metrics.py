"""The workers of one `serve --workers N` add up their metrics through memory-mapped files in a
private folder: counters and histograms over every file, gauges over live workers only, and a
file that is not a whole metrics file is skipped, never a failed scrape.

Each "other worker" here is a `MetricsFile` opened in this process: `flock` locks belong to
an open file, so one process can play several workers, and closing one is a worker's death.
The real processes are in tests/e2e/test_metrics_workers.py."""

from __future__ import annotations

import logging
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ostiary.server import metrics
from ostiary.server.shared_metrics import (
    HEADER,
    INITIAL_SIZE,
    MAGIC,
    MetricsFile,
    UnreadableMetricsFile,
    parse,
    read_folder,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
HISTOGRAM_WIDTH = len(metrics.LATENCY_BUCKETS) + 3


def samples() -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(metrics.render()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A private folder this process shares its metrics through, as a worker does."""
    shared = tmp_path / "metrics"
    shared.mkdir(mode=0o700)
    metrics.share_through(shared)
    yield shared
    metrics.stop_sharing()


@pytest.fixture
def pool() -> Iterator[dict[str, int]]:
    """The pool this process reports; the test changes it in place."""
    stats = {"size": 5, "checked_out": 1, "checked_in": 4, "overflow": 0}

    def report() -> dict[str, int]:
        return dict(stats)

    metrics.watch_pool(report)
    yield stats
    if metrics.is_watching_pool(report):
        metrics.watch_pool(None)


def other_worker(folder: Path, *, route: str, requests: int, seconds: float) -> MetricsFile:
    """A second worker's file: `requests` answers of `route`, each taking `seconds`."""
    worker = MetricsFile(folder)
    worker.write(worker.row(("requests", route, 200), 1), requests)
    row = worker.row(("latency", route), HISTOGRAM_WIDTH)
    bucket = next(i for i, b in enumerate(metrics.LATENCY_BUCKETS) if seconds <= b)
    worker.write(row + 8 * bucket, requests)
    worker.write(row + 8 * (HISTOGRAM_WIDTH - 2), requests)
    worker.write(row + 8 * (HISTOGRAM_WIDTH - 1), requests * seconds)
    worker.write(worker.row(("tokens", "client_credentials"), 1), requests)
    worker.write(worker.row(("pool", "size"), 1), 7)
    worker.write(worker.row(("pool", "checked_out"), 1), 2)
    return worker


def test_a_scrape_adds_up_every_workers_counters_and_histograms(
    folder: Path, pool: dict[str, int]
) -> None:
    route = "/shared-" + os.urandom(4).hex()
    before = value(samples(), "ostiary_tokens_issued_total", grant_type="client_credentials")
    metrics.observe(route, 200, 0.0007)  # this worker: one fast answer
    metrics.count_token_issued("client_credentials")
    other = other_worker(folder, route=route, requests=3, seconds=0.2)
    try:
        found = samples()
    finally:
        other.close()
    assert value(found, "ostiary_http_requests_total", route=route, status="200") == 4
    assert value(found, "ostiary_http_request_duration_seconds_count", route=route) == 4
    bucket = "ostiary_http_request_duration_seconds_bucket"
    assert value(found, bucket, route=route, le="0.001") == 1
    assert value(found, bucket, route=route, le="0.1") == 1
    assert value(found, bucket, route=route, le="0.25") == 4
    assert value(found, bucket, route=route, le="+Inf") == 4
    total = value(found, "ostiary_http_request_duration_seconds_sum", route=route)
    assert total == pytest.approx(0.6007)
    tokens = value(found, "ostiary_tokens_issued_total", grant_type="client_credentials")
    assert tokens - before == 4
    # gauges: this worker's pool plus the other live one's
    assert value(found, "ostiary_db_pool_size") == 5 + 7
    assert value(found, "ostiary_db_pool_checked_out") == 1 + 2


def test_a_dead_workers_counts_stay_and_its_gauges_go(folder: Path, pool: dict[str, int]) -> None:
    route = "/dead-" + os.urandom(4).hex()
    other = other_worker(folder, route=route, requests=5, seconds=0.003)
    assert value(samples(), "ostiary_db_pool_size") == 5 + 7
    other.close()  # the kernel drops the lock of a process that ends, SIGKILL included
    metrics.observe(route, 200, 0.003)
    found = samples()
    assert value(found, "ostiary_http_requests_total", route=route, status="200") == 6
    assert value(found, "ostiary_http_request_duration_seconds_count", route=route) == 6
    assert value(found, "ostiary_db_pool_size") == 5
    assert value(found, "ostiary_db_pool_checked_out") == 1


def test_this_workers_pool_is_published_at_each_scrape(folder: Path, pool: dict[str, int]) -> None:
    assert value(samples(), "ostiary_db_pool_checked_out") == 1
    pool["checked_out"], pool["checked_in"] = 3, 2
    found = samples()
    assert value(found, "ostiary_db_pool_checked_out") == 3
    assert value(found, "ostiary_db_pool_checked_in") == 2


def test_counts_made_before_sharing_are_in_the_file(tmp_path: Path) -> None:
    route = "/early-" + os.urandom(4).hex()
    metrics.observe(route, 404, 0.01)
    folder = tmp_path / "metrics"
    folder.mkdir(mode=0o700)
    metrics.share_through(folder)
    try:
        with pytest.raises(RuntimeError, match="already shares"):
            metrics.share_through(folder)
        rows = {k: v for worker in read_folder(folder) for k, v in worker.rows.items()}
    finally:
        metrics.stop_sharing()
    assert rows[("requests", route, 404)] == (1.0,)
    assert rows[("latency", route)][-2:] == (1.0, pytest.approx(0.01))
    assert not metrics.is_sharing()


def test_a_workers_file_is_private_and_grows_past_its_first_size(tmp_path: Path) -> None:
    worker = MetricsFile(tmp_path)
    try:
        assert stat.S_IMODE(worker.path.stat().st_mode) == 0o600
        many = INITIAL_SIZE // 40 + 10
        for n in range(many):
            worker.write(worker.row(("errors", f"code-{n:05d}"), 1), n)
        assert worker.path.stat().st_size > INITIAL_SIZE
        (figures,) = read_folder(tmp_path)
    finally:
        worker.close()
    assert figures.alive
    assert len(figures.rows) == many
    assert figures.rows[("errors", f"code-{many - 1:05d}")] == (many - 1,)


def test_a_row_too_wide_or_with_an_oversized_key_is_a_programming_error(tmp_path: Path) -> None:
    worker = MetricsFile(tmp_path)
    try:
        with pytest.raises(ValueError, match="key under"):
            worker.row(("errors", "x" * 5000), 1)
        with pytest.raises(ValueError, match="1-64 values"):
            worker.row(("errors", "wide"), 65)
    finally:
        worker.close()


def _whole_file(rows: dict[tuple[str | int, ...], float]) -> bytes:
    folder_file = bytearray(HEADER.size)
    for key, number in rows.items():
        encoded = ("[" + ",".join(f'"{k}"' for k in key) + "]").encode()
        padded = encoded + bytes(-len(encoded) % 8)
        folder_file += struct.pack("<II", len(encoded), 1) + padded + struct.pack("<d", number)
    HEADER.pack_into(folder_file, 0, MAGIC, len(folder_file))
    return bytes(folder_file)


GOOD = _whole_file({("errors", "invalid_grant"): 2.0})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than its header"),
        (b"GIF89a" + bytes(40), "not a metrics file"),
        (GOOD[:-8], "claims more bytes"),
        (HEADER.pack(MAGIC, HEADER.size + 4) + bytes(4), "cut off"),
        (HEADER.pack(MAGIC, 40) + struct.pack("<II", 0, 1) + bytes(16), "impossible size"),
        (HEADER.pack(MAGIC, 40) + struct.pack("<II", 8, 99) + bytes(16), "impossible size"),
        (HEADER.pack(MAGIC, 32) + struct.pack("<II", 8, 1) + b"[1,2,3]!", "runs past the end"),
        (HEADER.pack(MAGIC, 40) + struct.pack("<II", 8, 1) + b"not json" + bytes(8), "no readable"),
        (HEADER.pack(MAGIC, 40) + struct.pack("<II", 8, 1) + b'{"a": 1}' + bytes(8), "shape"),
        (HEADER.pack(MAGIC, 40) + struct.pack("<II", 8, 1) + b"[[1],[]]" + bytes(8), "shape"),
    ],
    ids=[
        "empty",
        "wrong-magic",
        "truncated",
        "row-head-cut",
        "empty-key",
        "too-wide",
        "past-the-end",
        "key-not-json",
        "key-an-object",
        "key-of-lists",
    ],
)
def test_a_broken_file_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMetricsFile, match=reason):
        parse(data)


def test_a_scrape_skips_a_broken_file_and_says_which(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse(GOOD) == {("errors", "invalid_grant"): (2.0,)}
    (folder / "99-garbage.metrics").write_bytes(b"\x00" * 3 + os.urandom(200))
    (folder / "98-good.metrics").write_bytes(GOOD)
    (folder / "97-half-made.new").write_bytes(b"")  # a worker still making its file
    before = value(samples(), "ostiary_oauth_errors_total", error="invalid_grant")
    metrics.count_oauth_error("invalid_grant")
    with caplog.at_level(logging.WARNING, logger="ostiary.server"):
        found = samples()
    # the good dead file's 2, plus this worker's one more than the scrape before
    assert value(found, "ostiary_oauth_errors_total", error="invalid_grant") == before + 1
    assert "99-garbage.metrics" in caplog.text
    assert "98-good" not in caplog.text


def test_a_missing_folder_is_a_warning_not_a_failed_scrape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert read_folder(tmp_path / "gone") == []
    with caplog.at_level(logging.WARNING, logger="ostiary.server"):
        read_folder(tmp_path / "gone")
    assert "cannot list" in caplog.text
