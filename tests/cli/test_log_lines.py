"""`TurnBufferedStreamHandler` (cli/_log_lines.py): the lines of one event-loop turn leave in
one write, in the order they were logged, and none is lost: not from a thread without a loop,
not when the loop stops before its turn ends, not when the stream fails. Through a real
`ostiary serve`, the audit lines in its log are checked by tests/cli/test_server_commands.py."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
import threading
from collections.abc import Iterator

import pytest

from ostiary.cli._log_lines import TurnBufferedStreamHandler
from ostiary.cli._serve import (
    AUDIT_HANDLER,
    AUDIT_LOGGER,
    TURN_BUFFERED,
    _log_config,
    write_audit_lines_straight,
)
from ostiary.store import _audit, write_audit_lines_with


class Recorded(io.StringIO):
    """A text stream that also keeps each `write` call apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("the disk is full")


@pytest.fixture
def stream() -> Recorded:
    return Recorded()


@pytest.fixture
def logger(stream: Recorded) -> Iterator[logging.Logger]:
    log = logging.getLogger("ostiary.test_log_lines")
    handler = TurnBufferedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    log.removeHandler(handler)
    handler.close()


def test_the_lines_of_one_turn_leave_in_one_write_when_the_turn_ends(
    logger: logging.Logger, stream: Recorded
) -> None:
    async def turns() -> None:
        for n in range(3):
            logger.info("first %d", n)
            logger.info("second %d", n)
            assert stream.writes == [f"first {i}\nsecond {i}\n" for i in range(n)]  # not yet
            await asyncio.sleep(0)

    asyncio.run(turns())
    assert stream.writes == [f"first {n}\nsecond {n}\n" for n in range(3)]


def test_without_a_running_loop_a_line_is_written_at_once(
    logger: logging.Logger, stream: Recorded
) -> None:
    logger.info("starting")
    assert stream.getvalue() == "starting\n"


def test_a_line_from_a_thread_follows_the_lines_kept_before_it(
    logger: logging.Logger, stream: Recorded
) -> None:
    async def turn() -> None:
        logger.info("kept")
        worker = threading.Thread(target=logger.info, args=("from a thread",))
        worker.start()
        worker.join()
        logger.info("kept after")

    asyncio.run(turn())
    assert stream.getvalue() == "kept\nfrom a thread\nkept after\n"


def test_a_loop_that_stops_before_its_turn_ends_loses_nothing(
    logger: logging.Logger, stream: Recorded
) -> None:
    loop = asyncio.new_event_loop()

    async def last_words() -> None:
        logger.info("last words")
        loop.stop()  # the turn's write is scheduled, and never runs on this loop

    task = loop.create_task(last_words())
    loop.run_forever()
    assert task.done()
    loop.close()
    assert stream.getvalue() == ""

    async def next_loop() -> None:
        logger.info("on another loop")

    asyncio.run(next_loop())  # its own turn writes both, in order
    assert stream.getvalue() == "last words\non another loop\n"


def test_flush_writes_what_is_kept(logger: logging.Logger, stream: Recorded) -> None:
    async def turn() -> None:
        logger.info("before exit")
        for handler in logger.handlers:
            handler.flush()  # as logging.shutdown() does at exit
        assert stream.getvalue() == "before exit\n"

    asyncio.run(turn())
    assert stream.writes == ["before exit\n"]


def test_a_failing_stream_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", True)  # report, as the default does
    handler = TurnBufferedStreamHandler(Broken())
    log = logging.getLogger("ostiary.test_log_lines.broken")
    log.addHandler(handler)
    log.propagate = False
    try:

        async def turn() -> None:
            log.warning("lost")
            await asyncio.sleep(0)

        asyncio.run(turn())
    finally:
        log.removeHandler(handler)
    assert "the disk is full" in capsys.readouterr().err


def test_serve_writes_the_access_and_audit_lines_through_it() -> None:
    classes = {name: handler["class"] for name, handler in _log_config("info")["handlers"].items()}
    assert classes["access"] == classes["ostiary_audit"] == TURN_BUFFERED
    # the rest at once: "Application shutdown complete." is the last line before uvicorn
    # raises a stopping signal again, and nothing kept past it would ever be written
    assert classes["default"] == "logging.StreamHandler"


def test_a_finished_line_keeps_its_place_among_the_records(
    logger: logging.Logger, stream: Recorded
) -> None:
    handler = logger.handlers[0]
    assert isinstance(handler, TurnBufferedStreamHandler)

    async def turn() -> None:
        logger.info("a record")
        handler.write_line("a finished line")
        logger.info("another record")

    asyncio.run(turn())
    assert stream.writes == ["a record\na finished line\nanother record\n"]
    handler.write_line("no loop: at once")
    assert stream.writes[-1] == "no loop: at once\n"


@pytest.fixture
def serve_logging() -> Iterator[logging.Logger]:
    """Logging as `ostiary serve` configures it, and as it was again afterwards."""
    audit = logging.getLogger(AUDIT_LOGGER)
    saved = (audit.handlers[:], audit.filters[:], audit.level, audit.propagate)
    logging.config.dictConfig(_log_config("info"))
    yield audit
    write_audit_lines_with(None)
    for handler in audit.handlers:
        handler.close()
    audit.handlers[:], audit.filters[:] = saved[0], saved[1]
    audit.level, audit.propagate = saved[2], saved[3]


def only_serves(audit: logging.Logger) -> None:
    """pytest's capture handlers listen on the audit logger in each phase: take them off."""
    audit.handlers[:] = [handler for handler in audit.handlers if handler.name == AUDIT_HANDLER]


def test_serve_hands_audit_lines_straight_to_its_own_handler_only(
    serve_logging: logging.Logger,
) -> None:
    only_serves(serve_logging)
    ours = serve_logging.handlers[0]
    assert isinstance(ours, TurnBufferedStreamHandler)
    write_audit_lines_straight()
    assert _audit._write_line == ours.write_line
    listener = logging.NullHandler()  # someone else listens too: records for everyone
    serve_logging.addHandler(listener)
    write_audit_lines_straight()
    assert _audit._write_line is None
    serve_logging.removeHandler(listener)
    serve_logging.addFilter(logging.Filter("nothing"))  # a filter must see every record
    write_audit_lines_straight()
    assert _audit._write_line is None


def test_a_straight_audit_line_is_written_only_while_the_logger_wants_it(
    serve_logging: logging.Logger,
) -> None:
    only_serves(serve_logging)
    stream = Recorded()
    handler = serve_logging.handlers[0]
    assert isinstance(handler, TurnBufferedStreamHandler)
    handler.setStream(stream)
    write_audit_lines_straight()
    values = {"event": "token.issued", "at": 1, "client_id": "c1", "user_id": None}
    _audit.log_audit_line({**values, "detail": '{"scope":"read"}'})
    serve_logging.setLevel(logging.WARNING)  # `ostiary serve --log-level warning`
    _audit.log_audit_line({**values, "detail": '{"scope":"write"}'})
    assert stream.writes == [
        '{"at":1,"client_id":"c1","detail":{"scope":"read"},"event":"token.issued"}\n'
    ]
