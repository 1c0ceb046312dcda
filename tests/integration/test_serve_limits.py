"""`processor serve` bounds what a connection may cost: slow bodies, huge headers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.integration.test_serve import deliver, production_environment, serving

SLOW_SENDERS = 200
BODY_DEADLINE_SECONDS = 3


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def _trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    """One byte per sender every half second, never silent long enough for a read timeout,
    until just before the deadline (bytes sent after the server closed would reset the
    connection and lose its answer)."""
    quiet_at = time.monotonic() + BODY_DEADLINE_SECONDS - 0.5
    while not stop.wait(0.5) and time.monotonic() < quiet_at:
        for sender in sockets:
            with suppress(OSError):  # answered and closed by the server
                sender.sendall(b" ")


@pytest.fixture
def server(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[str]:
    env = production_environment(
        database_url, BODY_READ_TIMEOUT_SECONDS=str(BODY_DEADLINE_SECONDS)
    )
    with serving(tmp_path, env, "--no-access-log", "--limit-concurrency", "500") as served:
        yield served.url


@pytest.mark.slow
def test_a_slow_body_flood_leaves_normal_requests_served_and_is_cut_off(server: str) -> None:
    with ExitStack() as stack:
        senders = []
        for _ in range(SLOW_SENDERS):
            sender = stack.enter_context(_connect(server))
            sender.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: shop.example\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
            senders.append(sender)
        stop = threading.Event()
        trickler = threading.Thread(target=_trickle, args=(senders, stop), daemon=True)
        trickler.start()
        try:
            started = time.monotonic()
            health = httpx.get(f"{server}/healthz", timeout=5)
            delivery = deliver(server)
            elapsed = time.monotonic() - started
            assert (health.status_code, delivery.status_code) == (200, 200)
            assert elapsed < 1.0, elapsed

            answers = [_read_answer(sender) for sender in senders]
        finally:
            stop.set()
            trickler.join()
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[:3]


def _read_answer(sender: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sender.settimeout(BODY_DEADLINE_SECONDS + 10)
    received = b""
    while chunk := sender.recv(65536):
        received += chunk
    return received


@pytest.mark.slow
def test_an_endless_header_is_refused_with_431_and_the_connection_closed(server: str) -> None:
    with _connect(server) as sender:
        # Just over the limit, then silence: more bytes after the server's close would reset
        # the connection before its answer is read.
        sender.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: shop.example\r\nX-Padding: " + b"a" * 33 * 1024
        )
        answer = _read_answer(sender)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
