"""bench/open_loop.py, the soak's open-loop generator, against real HTTP servers on 127.0.0.1:
it sends what was asked on schedule, counts every answer by status, counts what never got
one, and times answers from their due time (a slow server shows in the latency, not in a
lower offered rate)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from open_loop import Target, run_blocking, target

RATE = 200.0
SECONDS = 1.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn answers
    status = 200
    pause = threading.Event()  # never set: wait() with a timeout is the slow answer
    delay = 0.0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.delay:
            self.pause.wait(self.delay)
        answer = b'{"echo": %d}' % len(body)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _serve(status: int = 200, delay: float = 0.0) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"status": status, "delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fast() -> Iterator[str]:
    yield from _serve()


def _goal(url: str) -> Target:
    return target(
        url,
        method="POST",
        headers=["Content-Type: application/x-www-form-urlencoded"],
        body=b"grant_type=client_credentials",
    )


def test_it_sends_the_asked_rate_and_counts_every_answer(fast: str) -> None:
    result = run_blocking(_goal(fast), rate=RATE, seconds=SECONDS)
    assert result.scheduled == result.sent == result.answered == result.ok == 200
    assert result.statuses == {"200": 200}
    assert result.errors == {}
    assert result.offered_rate == RATE
    assert result.achieved_rate == pytest.approx(RATE, rel=0.2)
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.connections_opened < result.sent  # connections are kept alive and reused


def test_a_slow_server_shows_in_latency_not_in_the_offered_rate() -> None:
    for url in _serve(delay=0.1):  # ten times the 5 ms between two requests
        result = run_blocking(_goal(url), rate=RATE, seconds=SECONDS)
    assert result.sent == result.ok == 200
    assert result.p50_ms >= 100
    assert result.connections_opened >= 15  # it opened what the schedule needed


def test_error_answers_and_unreachable_servers_are_counted_not_hidden() -> None:
    for url in _serve(status=503):
        refused = run_blocking(_goal(url), rate=RATE, seconds=0.25)
    assert refused.statuses == {"503": 50}
    assert refused.ok == 0 and refused.failed == 50
    assert refused.achieved_rate == 0
    for url in _serve():
        gone = url  # nobody listens once the server is closed
    nobody = run_blocking(_goal(gone), rate=RATE, seconds=0.25)
    assert nobody.ok == 0
    assert nobody.errors == {"connect": 50}


@pytest.mark.parametrize(
    ("url", "message"),
    [("https://127.0.0.1/token", "http://"), ("127.0.0.1:8000/token", "http://")],
    ids=["https", "no-scheme"],
)
def test_only_plain_http_urls_are_taken(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target(url, method="POST", headers=[], body=b"")


def test_rate_and_seconds_must_be_positive(fast: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        run_blocking(_goal(fast), rate=0, seconds=1)
