"""What a connection writes in one turn of the event loop goes out in one write."""

from __future__ import annotations

import asyncio

from processor.web.protocol import WRITE_AT_ONCE_BYTES, TurnWriter
from tests.fixtures.loops import run_on_own_loop


class RecordingTransport(asyncio.Transport):
    """The socket's transport, as far as these tests look: what was written, and when it
    closed or was aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[object] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def _next_turn() -> None:
    await asyncio.sleep(0)


def test_a_head_and_a_body_written_in_one_turn_go_out_as_one_write() -> None:
    async def scenario() -> list[object]:
        transport = RecordingTransport()
        writer = TurnWriter(transport, asyncio.get_running_loop())
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writer.write(b"")
        body = bytearray(b"o")
        writer.writelines([body, memoryview(b"k")])
        body[0] = ord("X")  # the caller's buffer, reused before the turn ends
        assert transport.calls == []  # nothing before the turn ends
        await _next_turn()
        writer.write(b"next turn")
        await _next_turn()
        return transport.calls

    assert run_on_own_loop(scenario()) == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        b"next turn",
    ]


def test_closing_sends_what_waits_first_and_aborting_drops_it() -> None:
    async def scenario(end: str) -> list[object]:
        transport = RecordingTransport()
        writer = TurnWriter(transport, asyncio.get_running_loop())
        writer.write(b"last words")
        if end == "close":
            writer.close()
        else:
            writer.abort()
        await _next_turn()
        return transport.calls

    assert run_on_own_loop(scenario("close")) == [b"last words", "close"]
    assert run_on_own_loop(scenario("abort")) == ["abort"]


def test_nothing_is_written_to_a_transport_that_closed_meanwhile() -> None:
    async def scenario() -> list[object]:
        transport = RecordingTransport()
        writer = TurnWriter(transport, asyncio.get_running_loop())
        writer.write(b"too late")
        assert writer.get_write_buffer_size() == len(b"too late")
        transport.closing = True  # the client went away
        await _next_turn()
        return transport.calls

    assert run_on_own_loop(scenario()) == []


def test_a_large_write_goes_at_once_so_that_flow_control_sees_it() -> None:
    async def scenario() -> tuple[list[object], list[object]]:
        transport = RecordingTransport()
        writer = TurnWriter(transport, asyncio.get_running_loop())
        writer.write(b"head")
        writer.write(b"x" * WRITE_AT_ONCE_BYTES)
        during_the_turn = list(transport.calls)
        writer.write(b"tail")
        await _next_turn()
        return during_the_turn, transport.calls

    during_the_turn, after = run_on_own_loop(scenario())
    assert during_the_turn == [b"head" + b"x" * WRITE_AT_ONCE_BYTES]
    assert after == [*during_the_turn, b"tail"]
