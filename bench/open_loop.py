"""An open-loop HTTP load generator: requests leave on a fixed schedule (`rate` per second),
whether or not the earlier ones have been answered, so a slow answer never holds the next
request back, and the offered load is the rate asked for.

    .venv/bin/python bench/open_loop.py --url http://127.0.0.1:8000/token --rate 1000 \\
        --seconds 60 --header 'Authorization: Basic ...' \\
        --header 'Content-Type: application/x-www-form-urlencoded' \\
        --body 'grant_type=client_credentials&scope=read'

It prints one JSON object: what was asked and sent, the answers by status, the errors, and
latency percentiles. Latency runs from the moment a request was *due*, not from when it
left: time spent waiting for a free connection counts (no coordinated omission, as in
wrk2). `max_send_lag_ms` says how far behind its schedule the generator itself fell; a
large figure means the generator, not the server, was short of CPU.

Why not wrk: wrk is closed-loop. Each connection sends, waits for the answer, then (with
a Lua `delay()`) pauses: its rate is 1 / (answer time + pause). A pause tuned on a probe's
mean answer time misses whenever answers get slower than in the probe, every slow answer
(the soak's p99 was 46 ms and max 379 ms against a 12 ms period) pushes that connection's
later requests back for good, and `delay()` counts whole milliseconds. So it offered ~68%
of the peak when asked for 70%. wrk2 (`-R`) is open-loop but is not packaged by Debian;
this file needs nothing beyond the standard library (and uses uvloop when installed).

Each request goes on an idle keep-alive connection, or on a new one while fewer than
`--connections` are open; beyond that it waits for one to come free (and its latency grows).
Answers are read as HTTP/1.1 with a Content-Length (what uvicorn sends for JSON); a
`Connection: close` answer, an error or a timeout closes the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from array import array
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

MAX_HEAD: int = 64 * 1024
# uvicorn closes a keep-alive connection after 5 s without a request; one that closes as a
# request is written to it loses that request. Ours are closed first, after this long idle.
IDLE_LIMIT: float = 2.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    request: bytes  # the whole HTTP/1.1 request, sent as is every time


def target(url: str, *, method: str, headers: list[str], body: bytes) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"an http:// URL with a host is needed, not {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{port}", *headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return Target(parts.hostname, port, head.encode("latin-1") + body)


@dataclass
class Result:
    asked_rate: float
    seconds: float  # the sending window asked for
    scheduled: int
    sent: int
    answered: int
    ok: int  # 2xx answers
    offered_rate: float  # requests sent per second of the sending window
    achieved_rate: float  # 2xx answers per second, from the first due time to the last answer
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # connect, reset, timeout, malformed
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0
    max_send_lag_ms: float = 0.0
    connections_opened: int = 0

    @property
    def failed(self) -> int:
        return self.scheduled - self.ok


class _Failed(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One keep-alive connection that carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.expect = -1  # bytes of the answer being read (head and body), once its head is in
        self.status = 0
        self.keep = True
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's: no subclass

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expect < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._fail("malformed")
                return
            try:
                self._read_head(bytes(self.buffer[:end]))
            except ValueError:
                self._fail("malformed")
                return
            self.expect += end + 4
        if len(self.buffer) >= self.expect:
            del self.buffer[: self.expect]
            self.expect = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self.status)

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                self.keep = False
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not read")
        self.expect = length if length is not None else 0

    def _fail(self, kind: str) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(_Failed(kind))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail("reset")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def run(
    goal: Target,
    *,
    rate: float,
    seconds: float,
    connections: int = 256,
    timeout: float = 5.0,
) -> Result:
    """Send `rate` requests per second for `seconds` on schedule, then wait for the last
    answers (each at most `timeout`)."""
    if rate <= 0 or seconds <= 0 or connections < 1:
        raise ValueError("rate, seconds and connections must be positive")
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    idle: list[_Connection] = []
    waiting: deque[asyncio.Future[_Connection | None]] = deque()
    opened = 0
    total_opened = 0
    latencies = array("d")
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    sent = 0
    max_lag = 0.0
    last_answer = 0.0

    async def acquire() -> _Connection:
        nonlocal opened, total_opened
        while True:
            now = clock()
            # the longest idle are at the bottom (the most recently used go back on top)
            while idle and (idle[0].closed or now - idle[0].idle_since > IDLE_LIMIT):
                idle.pop(0).close()
                opened -= 1
            while idle:
                connection = idle.pop()
                if not connection.closed:
                    return connection
                opened -= 1  # the server closed it
            if opened < connections:
                opened += 1
                total_opened += 1
                try:
                    _, protocol = await loop.create_connection(_Connection, goal.host, goal.port)
                except BaseException as exc:  # a timeout cancels us here too
                    opened -= 1
                    if isinstance(exc, OSError):
                        raise _Failed("connect") from exc
                    raise
                return protocol
            ticket: asyncio.Future[_Connection | None] = loop.create_future()
            waiting.append(ticket)
            handed = await ticket
            if handed is not None:
                return handed  # else a connection was closed: try to open one

    def release(connection: _Connection, reusable: bool) -> None:
        nonlocal opened
        if not reusable:
            connection.close()
            opened -= 1
        while waiting:
            ticket = waiting.popleft()
            if not ticket.done():
                ticket.set_result(connection if reusable else None)
                return
        if reusable:
            connection.idle_since = clock()
            idle.append(connection)

    async def one(due: float) -> None:
        nonlocal sent, max_lag, last_answer
        try:
            async with asyncio.timeout(timeout):
                connection = await acquire()
                reusable = False
                try:
                    max_lag = max(max_lag, clock() - due)
                    sent += 1
                    status = await connection.send(goal.request)
                    reusable = connection.keep and not connection.closed
                finally:
                    release(connection, reusable)
        except TimeoutError:
            errors["timeout"] += 1
            return
        except _Failed as failed:
            errors[failed.kind] += 1
            return
        except OSError:
            errors["reset"] += 1
            return
        now = clock()
        last_answer = max(last_answer, now)
        statuses[str(status)] += 1
        if 200 <= status < 300:
            latencies.append(now - due)

    scheduled = max(1, round(rate * seconds))
    start = clock() + 0.05
    tasks: set[asyncio.Task[None]] = set()
    index = 0
    while index < scheduled:
        now = clock()
        due = start + index / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        # everything due by now leaves at once: a late timer costs no request
        while index < scheduled and start + index / rate <= now:
            task = loop.create_task(one(start + index / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
    if tasks:
        await asyncio.wait(tasks)
    for connection in idle:
        connection.close()
    ordered = sorted(latencies)
    ok = len(ordered)
    elapsed = max(last_answer, start + seconds) - start

    def percentile(q: float) -> float:
        return round(ordered[min(ok - 1, int(q * ok))] * 1000, 2) if ok else 0.0

    return Result(
        asked_rate=rate,
        seconds=seconds,
        scheduled=scheduled,
        sent=sent,
        answered=sum(statuses.values()),
        ok=ok,
        offered_rate=round(sent / seconds, 1),
        achieved_rate=round(ok / elapsed, 1),
        statuses=dict(statuses),
        errors=dict(errors),
        p50_ms=percentile(0.50),
        p90_ms=percentile(0.90),
        p99_ms=percentile(0.99),
        p999_ms=percentile(0.999),
        max_ms=round(ordered[-1] * 1000, 2) if ok else 0.0,
        max_send_lag_ms=round(max_lag * 1000, 2),
        connections_opened=total_opened,
    )


def run_blocking(goal: Target, **options: float) -> Result:
    """`run` on a fresh event loop (uvloop when it is installed: less CPU per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(goal, **options))  # type: ignore[arg-type]
    return uvloop.run(run(goal, **options))  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True, help="how long to send")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--body", default="")
    parser.add_argument("--connections", type=int, default=256, help="open at most (256)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (5)")
    args = parser.parse_args(argv)
    goal = target(args.url, method=args.method, headers=args.header, body=args.body.encode())
    result = run_blocking(
        goal,
        rate=args.rate,
        seconds=args.seconds,
        connections=args.connections,
        timeout=args.timeout,
    )
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
