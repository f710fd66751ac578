"""Prometheus metrics of this process: plain functions that count, one pure-ASGI layer that
times every request, and `render()` for `GET /metrics` (text exposition format 0.0.4).

```python
from ostiary.server import metrics

metrics.observe("/token", 200, 0.0021)     # a route that answers outside Starlette's stack
metrics.count_rate_limited("token")        # a limiter refused a request
```

The counters are plain dicts and lists touched only from the event loop's thread: no lock,
no allocation on the common path, about a microsecond per request. Every label value comes
from a closed set (route templates, status codes, grant types that succeeded, our own error
codes, limiter names), so no request can grow the number of series.

Under `ostiary serve --workers N` each worker also writes every figure it changes into its
own memory-mapped file (`shared_metrics`), and `render()` adds up the files of all the
workers: a scrape that reaches any one worker reports the whole server.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .shared_metrics import Key, MetricsFile, WorkerFigures, read_folder

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: the token endpoint answers in about a millisecond; a login hashes for ~100 ms.
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
UNMATCHED_ROUTE: Final = "unmatched"  # a 404 or a request refused before routing

POOL_PUBLISH_INTERVAL: Final = 1.0  # seconds: how stale another worker's pool gauges may be

PoolStats = Callable[[], Mapping[str, int]]

# the rows of a worker's metrics file: (family, *labels) -> values
_REQUESTS: Final = "requests"
_LATENCY: Final = "latency"  # the buckets (not cumulative), then the count and the sum
_TOKENS: Final = "tokens"
_ERRORS: Final = "errors"
_RATE_LIMITED: Final = "rate_limited"
_PURGED: Final = "purged"
_POOL: Final = "pool"  # a gauge: read from live workers only
_HISTOGRAM_WIDTH: Final = len(LATENCY_BUCKETS) + 3
_COUNT_AT: Final = len(LATENCY_BUCKETS) + 1
_SUM_AT: Final = len(LATENCY_BUCKETS) + 2


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0


class _Counts:
    """Every figure of one process, or of the whole server once added up."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.tokens: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.rate_limited: dict[str, int] = {}
        self.purged: dict[str, int] = {}
        self.pool: dict[str, int] = {}


class _Registry(_Counts):
    def __init__(self) -> None:
        super().__init__()
        self.watched_pool: PoolStats | None = None
        self.shared: MetricsFile | None = None  # set in each worker of `serve --workers N`
        self.folder: Path | None = None


_registry: Final = _Registry()


def observe(route: str, status: int, seconds: float) -> None:
    """Count one answered request: `route` is the route's path template, never the raw path."""
    reg = _registry
    key = (route, status)
    count = reg.requests[key] = reg.requests.get(key, 0) + 1
    histogram = reg.latency.get(route)
    if histogram is None:
        histogram = reg.latency[route] = _Histogram()
    index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
    histogram.buckets[index] += 1
    histogram.count += 1
    histogram.total += seconds
    shared = reg.shared
    if shared is not None:
        shared.write(shared.row((_REQUESTS, route, status), 1), count)
        row = shared.row((_LATENCY, route), _HISTOGRAM_WIDTH)
        shared.write(row + 8 * index, histogram.buckets[index])
        shared.write(row + 8 * _COUNT_AT, histogram.count)
        shared.write(row + 8 * _SUM_AT, histogram.total)


def count_token_issued(grant_type: str) -> None:
    """One successful token response for `grant_type` (a grant the server supports)."""
    _count(_registry.tokens, _TOKENS, grant_type)


def count_oauth_error(error: str) -> None:
    """One error response with this RFC 6749 §5.2 / §4.1.2.1 `error` code."""
    _count(_registry.errors, _ERRORS, error)


def count_rate_limited(limit: str) -> None:
    """One request refused by the rate limiter named `limit` (e.g. "token", "login")."""
    _count(_registry.rate_limited, _RATE_LIMITED, limit)


def count_purged(table: str, rows: int) -> None:
    """`rows` expired rows of `table` removed by a purge (`server/purge.py`)."""
    _count(_registry.purged, _PURGED, table, rows)


def _count(counts: dict[str, int], family: str, label: str, amount: int = 1) -> None:
    value = counts[label] = counts.get(label, 0) + amount
    shared = _registry.shared
    if shared is not None:
        shared.write(shared.row((family, label), 1), value)


def watch_pool(stats: PoolStats | None) -> None:
    """Report the database pool through `stats` (None: stop reporting it)."""
    _registry.watched_pool = stats
    publish_pool()


def is_watching_pool(stats: PoolStats) -> bool:
    return _registry.watched_pool == stats  # bound methods are new objects on each access


# -- the workers of one `serve --workers N` ----------------------------------------------------


def share_through(folder: Path) -> None:
    """From now on, write this process's figures into a file of its own in `folder`, and
    answer `render()` with the figures of every process that wrote there (the workers of one
    `ostiary serve --workers N`; the supervisor makes the folder private and removes it)."""
    if _registry.shared is not None:
        raise RuntimeError("this process already shares its metrics")
    shared = MetricsFile(folder)
    _registry.shared, _registry.folder = shared, folder
    for (route, status), count in _registry.requests.items():
        shared.write(shared.row((_REQUESTS, route, status), 1), count)
    for route, histogram in _registry.latency.items():
        row = shared.row((_LATENCY, route), _HISTOGRAM_WIDTH)
        for index, value in enumerate((*histogram.buckets, histogram.count, histogram.total)):
            shared.write(row + 8 * index, value)
    for family, counts in (
        (_TOKENS, _registry.tokens),
        (_ERRORS, _registry.errors),
        (_RATE_LIMITED, _registry.rate_limited),
        (_PURGED, _registry.purged),
    ):
        for label, value in counts.items():
            shared.write(shared.row((family, label), 1), value)
    publish_pool()


def stop_sharing() -> None:
    """Close this process's file (it then reads as a dead worker's) and count alone again."""
    shared = _registry.shared
    _registry.shared = _registry.folder = None
    if shared is not None:
        shared.close()


def is_sharing() -> bool:
    return _registry.shared is not None


def publish_pool() -> None:
    """Write the pool's figures of now into this worker's file (no-op in a single process)."""
    shared = _registry.shared
    if shared is None:
        return
    stats = _registry.watched_pool() if _registry.watched_pool is not None else {}
    for name in _POOL_GAUGES:
        key = (_POOL, name)
        if name in stats:
            shared.write(shared.row(key, 1), stats[name])
        elif shared.has_row(key):  # the pool stopped reporting (its app stopped)
            shared.write(shared.row(key, 1), 0)


async def keep_pool_published(interval: float = POOL_PUBLISH_INTERVAL) -> None:
    """Publish the pool gauges every `interval` seconds, until cancelled: a scrape at another
    worker reads them from this worker's file."""
    while True:
        publish_pool()
        await asyncio.sleep(interval)


class RequestMetrics:
    """Pure ASGI middleware: times each HTTP request and counts it by route and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting one

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # the router writes the matched route into the scope it was given
            route = scope.get("route")
            path = getattr(route, "path", None)
            observe(
                path if isinstance(path, str) else UNMATCHED_ROUTE,
                status,
                time.perf_counter() - started,
            )


# -- the text format -----------------------------------------------------------------------


def render() -> str:
    """Every metric in the Prometheus text format: this process's, or under `serve
    --workers N`, the sum over every worker (gauges: over the workers still running)."""
    reg = _registry
    if reg.folder is not None:
        publish_pool()
        return _render(_add_up(read_folder(reg.folder)))
    reg.pool = dict(reg.watched_pool()) if reg.watched_pool is not None else {}
    return _render(reg)


def _add_up(workers: list[WorkerFigures]) -> _Counts:
    total = _Counts()
    simple = {
        _TOKENS: total.tokens,
        _ERRORS: total.errors,
        _RATE_LIMITED: total.rate_limited,
        _PURGED: total.purged,
    }
    pool: dict[str, int] = {}
    for worker in workers:
        for key, values in worker.rows.items():
            _add_row(total, simple, pool if worker.alive else None, key, values)
    total.pool = pool
    return total


def _add_row(
    total: _Counts,
    simple: dict[str, dict[str, int]],
    pool: dict[str, int] | None,
    key: Key,
    values: tuple[float, ...],
) -> None:
    family, *labels = key
    if family == _REQUESTS and len(labels) == 2 and len(values) == 1:
        route, status = labels
        if isinstance(route, str) and isinstance(status, int):
            total.requests[route, status] = total.requests.get((route, status), 0) + int(values[0])
    elif family == _LATENCY and len(labels) == 1 and len(values) == _HISTOGRAM_WIDTH:
        route = labels[0]
        if isinstance(route, str):
            histogram = total.latency.get(route)
            if histogram is None:
                histogram = total.latency[route] = _Histogram()
            for index in range(len(histogram.buckets)):
                histogram.buckets[index] += int(values[index])
            histogram.count += int(values[_COUNT_AT])
            histogram.total += values[_SUM_AT]
    elif family in simple and len(labels) == 1 and isinstance(labels[0], str):
        counts = simple[str(family)]
        counts[labels[0]] = counts.get(labels[0], 0) + int(values[0])
    elif family == _POOL and pool is not None and len(labels) == 1:
        name = labels[0]
        if isinstance(name, str):
            pool[name] = pool.get(name, 0) + int(values[0])


def _render(reg: _Counts) -> str:
    lines: list[str] = []
    _family(
        lines,
        "ostiary_http_requests_total",
        "counter",
        "HTTP requests answered, by route template and status code.",
        [({"route": r, "status": str(s)}, n) for (r, s), n in sorted(reg.requests.items())],
    )
    lines.append(
        "# HELP ostiary_http_request_duration_seconds Time to answer an HTTP request, by route."
    )
    lines.append("# TYPE ostiary_http_request_duration_seconds histogram")
    for route, histogram in sorted(reg.latency.items()):
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, None), histogram.buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound is None else repr(bound)
            labels = _labels({"route": route, "le": le})
            lines.append(f"ostiary_http_request_duration_seconds_bucket{labels} {cumulative}")
        labels = _labels({"route": route})
        lines.append(f"ostiary_http_request_duration_seconds_sum{labels} {histogram.total!r}")
        lines.append(f"ostiary_http_request_duration_seconds_count{labels} {histogram.count}")
    _family(
        lines,
        "ostiary_tokens_issued_total",
        "counter",
        "Successful token responses, by grant type.",
        [({"grant_type": g}, n) for g, n in sorted(reg.tokens.items())],
    )
    _family(
        lines,
        "ostiary_oauth_errors_total",
        "counter",
        "OAuth error responses, by error code.",
        [({"error": e}, n) for e, n in sorted(reg.errors.items())],
    )
    _family(
        lines,
        "ostiary_rate_limited_total",
        "counter",
        "Requests refused by a rate limit, by limit.",
        [({"limit": k}, n) for k, n in sorted(reg.rate_limited.items())],
    )
    _family(
        lines,
        "ostiary_purged_rows_total",
        "counter",
        "Expired rows removed from the database by the purge, by table.",
        [({"table": t}, n) for t, n in sorted(reg.purged.items())],
    )
    for name, help_text in _POOL_GAUGES.items():
        if name in reg.pool:
            _family(lines, f"ostiary_db_pool_{name}", "gauge", help_text, [({}, reg.pool[name])])
    return "\n".join(lines) + "\n"


_POOL_GAUGES: Final = {
    "size": "Connections the database pool keeps open at most (without overflow).",
    "checked_out": "Database connections in use now.",
    "checked_in": "Idle database connections in the pool now.",
    "overflow": "Connections open beyond the pool size now.",
}


def _family(
    lines: list[str],
    name: str,
    kind: str,
    help_text: str,
    samples: list[tuple[dict[str, str], int]],
) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lines.append(f"{name}{_labels(labels)} {value}")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
