"""HTTP/1.1 connections to a real `ostiary serve`, on raw sockets: keep-alive, pipelining,
`Connection: close` and a large answer each get whole, ordered responses. `serve` sends the
writes of one event-loop turn as one (cli/_http_protocol.py); these are what that must
never break."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from e2e_server import OstiaryServer

METADATA = "/.well-known/oauth-authorization-server"


@contextmanager
def connection(server: OstiaryServer) -> Iterator[tuple[socket.socket, BinaryIO]]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        yield sock, sock.makefile("rb")
    finally:
        sock.close()


def get(path: str, *, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


def token_request(client: dict[str, Any]) -> bytes:
    body = b"grant_type=client_credentials&scope=read"
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode())
    head = (
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {basic.decode()}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(stream: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names) and exactly Content-Length bytes."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def test_one_connection_serves_requests_one_after_another(
    server: OstiaryServer, confidential_client: dict[str, Any]
) -> None:
    with connection(server) as (sock, stream):
        for _ in range(3):
            sock.sendall(get(METADATA))
            status, _, body = read_response(stream)
            assert status == 200 and json.loads(body)["issuer"] == server.issuer
            sock.sendall(token_request(confidential_client))
            status, headers, body = read_response(stream)
            assert status == 200, body
            assert headers["cache-control"] == "no-store"
            assert json.loads(body)["token_type"] == "Bearer"


def test_pipelined_requests_are_answered_whole_and_in_order(
    server: OstiaryServer, confidential_client: dict[str, Any]
) -> None:
    with connection(server) as (sock, stream):
        sock.sendall(get(METADATA) + token_request(confidential_client) + get("/no-such-page"))
        first, second, third = (read_response(stream) for _ in range(3))
    assert first[0] == 200 and json.loads(first[2])["issuer"] == server.issuer
    assert second[0] == 200 and "access_token" in json.loads(second[2])
    assert third[0] == 404


def test_connection_close_gets_the_whole_answer_then_the_end(server: OstiaryServer) -> None:
    with connection(server) as (sock, stream):
        sock.sendall(get(METADATA, extra="Connection: close\r\n"))
        status, headers, body = read_response(stream)
        assert status == 200 and json.loads(body)["issuer"] == server.issuer
        assert headers["connection"] == "close"
        assert stream.read() == b""  # nothing more, and the server closed its side


def test_a_large_answer_arrives_whole(server: OstiaryServer) -> None:
    with connection(server) as (sock, stream):
        sock.sendall(get("/openapi.json"))
        status, _, body = read_response(stream)
        assert status == 200 and len(body) > 10_000
        assert json.loads(body)["openapi"].startswith("3.")
        sock.sendall(get(METADATA))  # and the connection goes on
        assert read_response(stream)[0] == 200
