"""`CoalescedWrites` (cli/_http_protocol.py): what one event-loop turn writes leaves in one
write, in order, and nothing written is lost on close or sent after an abort. On real
loopback sockets; the HTTP behaviour through `ostiary serve` is in
tests/e2e/test_http_connections.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ostiary.cli._http_protocol import CoalescedWrites

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Peer(asyncio.Protocol):
    """The far end: keeps what arrives and says when the connection ends."""

    received: bytearray = field(default_factory=bytearray)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def data_received(self, data: bytes) -> None:
        self.received.extend(data)

    def eof_received(self) -> bool | None:
        self.ended.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended.set()


@dataclass
class Link:
    coalesced: CoalescedWrites
    inner: asyncio.Transport
    writes: list[bytes]  # what the real transport was handed, write by write
    peer: Peer


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    loop = asyncio.get_running_loop()
    peer = Peer()
    server = await loop.create_server(lambda: peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inner, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    writes: list[bytes] = []
    real_write = inner.write

    def counted(data: bytes | bytearray | memoryview) -> None:
        writes.append(bytes(data))
        real_write(data)

    inner.write = counted  # type: ignore[method-assign]
    yield Link(CoalescedWrites(inner, loop), inner, writes, peer)
    inner.close()
    server.close()
    await server.wait_closed()


async def arrived(peer: Peer, size: int) -> bytes:
    async with asyncio.timeout(5):
        while len(peer.received) < size:
            await asyncio.sleep(0.005)
    return bytes(peer.received)


async def test_the_writes_of_one_turn_leave_in_one_write(link: Link) -> None:
    link.coalesced.write(b"HTTP/1.1 200 OK\r\n")
    link.coalesced.write(bytearray(b"content-length: 2\r\n\r\n"))
    link.coalesced.write(memoryview(b"{}"))
    assert link.writes == []  # nothing leaves before the turn ends
    assert link.coalesced.get_write_buffer_size() == 40
    expected = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    assert await arrived(link.peer, len(expected)) == expected
    assert link.writes == [expected]


async def test_writes_of_later_turns_follow_in_order(link: Link) -> None:
    link.coalesced.write(b"first ")
    await asyncio.sleep(0)  # the turn ends: the first write leaves
    link.coalesced.writelines([b"second ", b"third"])
    assert await arrived(link.peer, 18) == b"first second third"
    assert link.writes == [b"first ", b"second third"]


async def test_an_empty_write_sends_nothing(link: Link) -> None:
    link.coalesced.write(b"")
    await asyncio.sleep(0.05)
    assert link.writes == []
    assert link.coalesced.get_write_buffer_size() == 0


async def test_close_sends_what_was_written_first(link: Link) -> None:
    link.coalesced.write(b"the whole ")
    link.coalesced.write(b"answer")
    link.coalesced.close()
    assert link.coalesced.is_closing()
    async with asyncio.timeout(5):
        await link.peer.ended.wait()
    assert bytes(link.peer.received) == b"the whole answer"


async def test_abort_sends_nothing_kept(link: Link) -> None:
    link.coalesced.write(b"never sent")
    link.coalesced.abort()
    async with asyncio.timeout(5):
        await link.peer.ended.wait()
    await asyncio.sleep(0.05)  # the flush already scheduled finds nothing
    assert link.writes == []
    assert bytes(link.peer.received) == b""


async def test_a_write_to_a_closed_connection_is_dropped_quietly(link: Link) -> None:
    link.inner.close()  # the connection went away under the protocol
    link.coalesced.write(b"too late")
    await asyncio.sleep(0.05)  # the flush runs and raises nothing
    assert link.writes == []


async def test_everything_else_is_the_inner_transports(link: Link) -> None:
    coalesced, inner = link.coalesced, link.inner
    assert coalesced.get_extra_info("peername") == inner.get_extra_info("peername")
    assert coalesced.get_extra_info("no such thing", "default") == "default"
    coalesced.pause_reading()
    assert not coalesced.is_reading() and not inner.is_reading()
    coalesced.resume_reading()
    assert coalesced.is_reading()
    coalesced.set_write_buffer_limits(high=4096, low=1024)
    assert coalesced.get_write_buffer_limits() == inner.get_write_buffer_limits() == (1024, 4096)
    assert coalesced.get_protocol() is inner.get_protocol()
    assert coalesced.can_write_eof()
    coalesced.write(b"then eof")
    coalesced.write_eof()  # what was kept leaves before the end of the stream
    async with asyncio.timeout(5):
        await link.peer.ended.wait()
    assert bytes(link.peer.received) == b"then eof"
