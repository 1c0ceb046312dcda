"""Bounds on what one connection may cost: header bytes, and the time to send a body.

uvicorn's httptools parser keeps an unfinished header in memory however long it grows, and
waits for a body however slowly it trickles in. `BoundedHttpToolsProtocol` answers 431 and
closes once a request's header passes `MAX_HEADER_BYTES`; `BodyDeadline` answers 408 and
closes once a body has taken longer than its deadline. `processor serve` installs both.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Twice what browsers and Stripe send at most; nginx's default allows 32 KiB as well.
MAX_HEADER_BYTES = 32 * 1024
_HEADER_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 35\r\n\r\n"
    b"The request's headers are too large"
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting the bytes of each request's header section."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_header = True
        self._header_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_header = True
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._reading_header = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_header = True  # the next request on this connection starts with one

    def data_received(self, data: bytes) -> None:
        if self._reading_header:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self.transport.write(_HEADER_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)


class BodyTooSlow(Exception):
    """The body did not arrive within its deadline."""


class BodyDeadline:
    """ASGI middleware: a request body must arrive whole within `seconds` of the request.

    A slow-body flood otherwise holds a connection (and its file descriptor) per sender for
    as long as the sender likes.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        response_started = False

        async def receive_by_deadline() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: only a disconnect is left to wait for
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_by_deadline, watched_send)
        except BodyTooSlow:
            if response_started:
                raise
            await send_request_timeout(send)


async def send_request_timeout(send: Send) -> None:
    body = b"The request body did not arrive in time."
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})
