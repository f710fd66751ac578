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
codes, limiter names), so no request can grow the number of series. Each process counts its
own requests; with `--workers N` a scrape reaches one worker (see docs/operations.md).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Mapping
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

PoolStats = Callable[[], Mapping[str, int]]


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0


class _Registry:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.tokens: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.rate_limited: dict[str, int] = {}
        self.pool: PoolStats | None = None


_registry: Final = _Registry()


def observe(route: str, status: int, seconds: float) -> None:
    """Count one answered request: `route` is the route's path template, never the raw path."""
    requests = _registry.requests
    key = (route, status)
    requests[key] = requests.get(key, 0) + 1
    histogram = _registry.latency.get(route)
    if histogram is None:
        histogram = _registry.latency[route] = _Histogram()
    histogram.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
    histogram.count += 1
    histogram.total += seconds


def count_token_issued(grant_type: str) -> None:
    """One successful token response for `grant_type` (a grant the server supports)."""
    _registry.tokens[grant_type] = _registry.tokens.get(grant_type, 0) + 1


def count_oauth_error(error: str) -> None:
    """One error response with this RFC 6749 §5.2 / §4.1.2.1 `error` code."""
    _registry.errors[error] = _registry.errors.get(error, 0) + 1


def count_rate_limited(limit: str) -> None:
    """One request refused by the rate limiter named `limit` (e.g. "token", "login")."""
    _registry.rate_limited[limit] = _registry.rate_limited.get(limit, 0) + 1


def watch_pool(stats: PoolStats | None) -> None:
    """Report the database pool through `stats` (None: stop reporting it)."""
    _registry.pool = stats


def is_watching_pool(stats: PoolStats) -> bool:
    return _registry.pool == stats  # bound methods are new objects on each access; equal


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
    """Every metric of this process in the Prometheus text format."""
    reg = _registry
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
    pool = dict(reg.pool()) if reg.pool is not None else {}
    for name, help_text in _POOL_GAUGES.items():
        if name in pool:
            _family(lines, f"ostiary_db_pool_{name}", "gauge", help_text, [({}, pool[name])])
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
