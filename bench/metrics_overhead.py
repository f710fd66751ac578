"""What counting costs a request: `ostiary.server.metrics` side by side with prometheus_client
doing the same bookkeeping, and with nothing at all, all in one process.

    .venv/bin/python bench/metrics_overhead.py            # about 10 seconds

Rows (microseconds per request, the median of interleaved batches):
- `observe()`: the plain function a route calls (one counter, one histogram observation);
- `observe()` in a worker: the same in a worker of `serve --workers N`, which also stores
  each changed value into its memory-mapped metrics file;
- `prometheus_client`: the same counter and histogram with its `labels(...).inc()/observe()`;
- `ASGI layer`: a request through `RequestMetrics` around an app that answers at once, minus
  the same request straight to that app: the whole per-request cost of the middleware.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import Message, Receive, Scope, Send

from ostiary.server import metrics

BATCH = 20_000
ROUNDS = 15


class _Route:
    path = "/token"


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


def _asgi_batch(app: Callable[[Scope, Receive, Send], object]) -> Callable[[], float]:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(BATCH):
            scope: Scope = {"type": "http", "path": "/token", "method": "POST"}
            await app(scope, _receive, _send)  # type: ignore[misc]
        return time.perf_counter() - started

    return lambda: asyncio.run(run())


def _sync_batch(call: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(BATCH):
            call()
        return time.perf_counter() - started

    return run


def _shared_batch(folder: Path) -> Callable[[], float]:
    """`observe()` as a worker of `serve --workers N` runs it: each value also stored into
    the worker's memory-mapped file."""

    def run() -> float:
        metrics.share_through(folder)
        try:
            started = time.perf_counter()
            for _ in range(BATCH):
                metrics.observe("/token", 200, 0.0012)
            return time.perf_counter() - started
        finally:
            metrics.stop_sharing()

    return run


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="metrics-overhead-"))
    registry = CollectorRegistry()
    requests = Counter("r", "r", ["route", "status"], registry=registry)
    latency = Histogram("l", "l", ["route"], registry=registry, buckets=metrics.LATENCY_BUCKETS)

    def with_prometheus_client() -> None:
        requests.labels("/token", "200").inc()
        latency.labels("/token").observe(0.0012)

    candidates = {
        "observe()": _sync_batch(lambda: metrics.observe("/token", 200, 0.0012)),
        "observe() in a worker": _shared_batch(folder),
        "prometheus_client": _sync_batch(with_prometheus_client),
        "bare app": _asgi_batch(_app),
        "app in RequestMetrics": _asgi_batch(metrics.RequestMetrics(_app)),
    }
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(ROUNDS):  # interleaved, so drift on a shared host hits every row alike
        for name, run in candidates.items():
            results[name].append(run() / BATCH * 1e6)
    shutil.rmtree(folder)
    median = {name: statistics.median(values) for name, values in results.items()}
    print("| what | µs per request |")
    print("|---|---|")
    print(f"| `metrics.observe()` | {median['observe()']:.2f} |")
    shared = median["observe() in a worker"]
    print(f"| `metrics.observe()` in a worker of `serve --workers N` | {shared:.2f} |")
    print(f"| prometheus_client counter + histogram | {median['prometheus_client']:.2f} |")
    layer = median["app in RequestMetrics"] - median["bare app"]
    print(f"| `RequestMetrics` ASGI layer (with observe) | {layer:.2f} |")


if __name__ == "__main__":
    main()
