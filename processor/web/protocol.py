"""The HTTP protocol `processor serve` runs: uvicorn's httptools protocol with the connection
bounds (`web.connections`), writing what each turn of the event loop sends in one call.

uvicorn writes a response's head when the app starts the response and its body when the app
sends it: two system calls, and on the loopback or a LAN two packets for the client to wake
up for. Deliveries are nearly all the server answers, and each answer's head and body are
sent in the same turn, so holding the writes until the turn ends makes them one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from processor.web.connections import BoundedHttpToolsProtocol

# Beyond this much waiting, write at once: the transport's own buffer and its flow control
# (which pauses a large response's sender) take over.
WRITE_AT_ONCE_BYTES = 64 * 1024


class ServiceHttpProtocol(BoundedHttpToolsProtocol):
    """The protocol class `processor serve` gives uvicorn."""

    # Typed as uvicorn types it, narrower than asyncio's BaseProtocol: hence the ignore.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(TurnWriter(transport, asyncio.get_running_loop()))


class TurnWriter(asyncio.Transport):
    """A transport whose writes wait for the end of the event loop's turn, then go in one
    write of the transport it wraps (at once past `WRITE_AT_ONCE_BYTES`). Closing sends what
    waits first; aborting drops it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        # A copy of what may change before the turn ends, as asyncio's own transports keep.
        self._pending.append(data if isinstance(data, bytes) else bytes(data))
        self._pending_bytes += len(self._pending[-1])
        if self._pending_bytes >= WRITE_AT_ONCE_BYTES:
            self._flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
