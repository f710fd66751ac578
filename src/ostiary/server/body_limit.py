"""Refuse request bodies over `max_request_size` with 413 before anything parses them.

Pure ASGI middleware: a declared `Content-Length` over the limit is refused at once; a body
without one (chunked) is read up to the limit and refused when it goes past it. The body
read is then replayed to the application, so routes never see more than the limit.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Refuse = Callable[[Scope, int], Response]  # (scope, status) -> the error response


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_size: int, refuse: Refuse) -> None:
        self.app = app
        self.max_size = max_size
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(scope, receive, self.max_size)
        if body is None:
            return
        if isinstance(body, int):
            await self.refuse(scope, body)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def read_body(scope: Scope, receive: Receive, max_size: int) -> bytes | int | None:
    """The whole request body; or the status that refuses it (400 for an unusable
    Content-Length, 413 past `max_size`), decided before more than `max_size` bytes are
    read; or None when the client disconnected first."""
    declared = _content_length(scope)
    if declared == "invalid":  # RFC 9112 §6.3: an unusable Content-Length is a 400
        return 400
    if isinstance(declared, int) and declared > max_size:
        return 413
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body = message.get("body", b"")
        size += len(body)
        if size > max_size:
            return 413
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(scope: Scope) -> int | str | None:
    values = [v for k, v in scope.get("headers", []) if k == b"content-length"]
    if not values:
        return None
    if len(values) > 1 or not values[0].isdigit() or len(values[0]) > 18:
        return "invalid"
    return int(values[0])


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the client to disconnect

    return replay
