"""Store webhook deliveries through a child process of the web worker
(`WEBHOOK_WRITER=process`, the default).

Why: a Python process runs one thread at a time. With the writer in a thread of the web
worker, HTTP parsing and the database work of every delivery take turns on one core, and each
hand-over between the event loop and the writer thread waits for the other to let go. Here
the event loop checks the signature (about 15 µs) and passes each batch over a socket to a
child process that parses and stores it on a core of its own; no thread of the web worker
competes with the loop, and the webhook secrets never leave it.

The guarantee is unchanged: the child answers a batch only after its COMMIT returned, and the
web worker answers 2xx only for what the child answered as stored. If the child dies, the
batch in flight is answered 503 (Stripe delivers it again; an event the child did commit is
then a duplicate) and the next batch starts a new child.

    web worker (event loop)                             child process
    store(): check_signature -> pending list
    pump task, one per channel:  [(payload, secret index), ...] -->  thread per channel:
                                                                     BatchStore.write_signed
                                 <-- [Receipt | refusal, ...]        (parse, store, COMMIT)

Each event loop that stores gets its own channels (a socketpair per pump; the child's end
travels over a control socket with SCM_RIGHTS), so the writer serves any number of loops,
as tests and embedding servers may run. Frames are a 4-byte length and a pickle: both ends
are this module. The child reads its settings as JSON on stdin, so the database password
stays off the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from processor.clock import Clock, utc_now
from processor.db.engine import make_engine
from processor.errors import ProcessorError
from processor.logs import configure_logging
from processor.webhooks.store import Outcome
from processor.webhooks.verify import Signed, check_signature
from processor.webhooks.writer import MAX_BATCH, Answer, BatchStore, Receipt

log = logging.getLogger(__name__)

CHILD_COMMAND = (sys.executable, "-m", __name__)  # plus the control socket's descriptor
CHILD_STOP_SECONDS = 30
RESTART_INTERVAL_SECONDS = 1.0  # a child that dies at once is not restarted for every batch
# What a delivery gets when the child could not answer it: 503, deliver again.
LOST_RECEIPT = Receipt(Outcome.UNAVAILABLE, event_id="", event_type="unknown", secret_index=-1)
_LENGTH = struct.Struct("!I")

class WriterUnavailable(OSError):
    """No child process to hand a batch to (closed, or restarting too often)."""


@dataclass
class _Waiting:
    delivery: Signed
    future: asyncio.Future[Receipt]


@dataclass
class _LoopChannels:
    """One event loop's deliveries waiting for a pump, and its pump tasks."""

    pending: list[_Waiting] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    control: socket.socket  # carries the child's end of each new channel
    started: float


class ChildProcessWriter:
    """Stores deliveries through a child process; `store` is awaited from any event loop."""

    def __init__(
        self,
        database_url: str,
        secrets: Sequence[str],
        tolerance_seconds: int,
        *,
        channels: int,
        clock: Clock = utc_now,
        log_format: str = "text",
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.secrets = tuple(secrets)
        self.tolerance_seconds = tolerance_seconds
        self.clock = clock  # for the signature's age; the child stamps rows with the system's
        self._config = {"database_url": database_url, "log_format": log_format}
        self.channels = channels
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._closed = False
        self._loops: dict[asyncio.AbstractEventLoop, _LoopChannels] = {}

    async def store(self, body: bytes, signature_header: str | None) -> Receipt:
        """Verify and store one delivery; raises its refusal (`SignatureInvalid`, ...).

        Cancelling the caller is harmless: its answer is dropped when it arrives.
        """
        signed = check_signature(
            body, signature_header, self.secrets, self.tolerance_seconds, self.clock().timestamp()
        )
        loop = asyncio.get_running_loop()
        channels = self._loops.get(loop) or self._open_loop(loop)
        future: asyncio.Future[Receipt] = loop.create_future()
        channels.pending.append(_Waiting(signed, future))
        channels.ready.set()
        return await future

    def close(self) -> None:
        """Stop the child once it has answered what it holds; later stores answer 503."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is None:
            return
        child.control.close()  # the child stops reading its channels and exits
        try:
            child.process.wait(timeout=CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("the webhook writer process did not stop; killing it")
            child.process.kill()
            child.process.wait()

    # -- the event loop's side ------------------------------------------------------------

    def _open_loop(self, loop: asyncio.AbstractEventLoop) -> _LoopChannels:
        with self._lock:  # loops of other threads may be opening theirs
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            channels = self._loops[loop] = _LoopChannels()
        channels.pumps = [loop.create_task(self._pump(channels)) for _ in range(self.channels)]
        return channels

    async def _pump(self, channels: _LoopChannels) -> None:
        """Hand batches of this loop's deliveries to the child, one at a time on one channel.

        A pump never stops while its loop runs, and every batch it takes is answered: by the
        child, or with 503 when the channel broke (the channel is then opened again)."""
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        child: _Child | None = None  # the process at the other end of `stream`
        batch: list[_Waiting] = []
        try:
            while True:
                while not channels.pending:
                    channels.ready.clear()
                    await channels.ready.wait()
                batch = channels.pending[: self.max_batch]
                del channels.pending[: self.max_batch]
                try:
                    if stream is None:
                        channel, child = self._new_channel()
                        stream = await asyncio.open_connection(sock=channel)
                    answers = await _exchange(stream, [waiting.delivery for waiting in batch])
                except Exception as exc:  # the channel (or the child) broke: 503, reopen
                    if stream is not None:
                        stream[1].close()
                        stream = None
                    if child is not None:
                        self._child_broke(child, exc)
                        child = None
                    elif not isinstance(exc, WriterUnavailable):
                        log.error("could not reach the webhook writer process: %r", exc)
                    answers = [LOST_RECEIPT] * len(batch)
                for waiting, answer in zip(batch, answers, strict=True):
                    _settle(waiting.future, answer)
        finally:  # the loop is closing: nobody may be left waiting
            for waiting in batch:
                _settle(waiting.future, LOST_RECEIPT)
            if stream is not None:
                stream[1].close()

    # -- the child ------------------------------------------------------------------------

    def _new_channel(self) -> tuple[socket.socket, _Child]:
        """A socket to a serving thread of the child, starting the child if it is not running."""
        with self._lock:
            if self._closed:
                raise WriterUnavailable("the webhook writer is closed")
            child = self._child
            if child is None or child.process.poll() is not None:
                if child is not None:
                    if _started_lately(child):
                        raise WriterUnavailable("the webhook writer process is restarting")
                    log.warning(
                        "starting the webhook writer process again (the last one exited: %s)",
                        child.process.returncode,
                    )
                child = self._child = _spawn(self._config)
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(child.control, [b"c"], [theirs.fileno()])
            except OSError:
                ours.close()
                raise
            finally:
                theirs.close()
            return ours, child

    def _child_broke(self, child: _Child, exc: BaseException) -> None:
        """A channel to `child` failed mid-batch: it is gone (or broken, and then stopped here);
        the next batch that needs a channel starts a new one."""
        if child.process.returncode is not None:
            return  # already reported by another channel
        if child.process.poll() is None:
            child.process.kill()  # a channel broke while it ran: do not trust it
            child.process.wait()
        log.error(
            "the webhook writer process stopped (exit code %s, %s); its batch was answered 503",
            child.process.returncode,
            type(exc).__name__,
        )


def _started_lately(child: _Child) -> bool:
    return time.monotonic() - child.started < RESTART_INTERVAL_SECONDS


def _spawn(config: dict[str, Any]) -> _Child:
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [*CHILD_COMMAND, str(theirs.fileno())],
            stdin=subprocess.PIPE,
            pass_fds=[theirs.fileno()],
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    assert process.stdin is not None
    # A child that died at once is returned all the same: its first channel fails (503),
    # and RESTART_INTERVAL_SECONDS spaces out the next attempts.
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(json.dumps(config).encode())
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    return _Child(process, ours, time.monotonic())


async def _exchange(
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], deliveries: list[Signed]
) -> list[Answer]:
    reader, writer = stream
    payload = pickle.dumps(deliveries, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LENGTH.pack(len(payload)) + payload)
    await writer.drain()
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    answers: list[Answer] = pickle.loads(await reader.readexactly(length))  # noqa: S301 - our child
    if len(answers) != len(deliveries):
        raise EOFError("the writer process answered a different batch")
    return answers


def _settle(future: asyncio.Future[Receipt], answer: Answer) -> None:
    if future.done():  # its caller stopped waiting
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)


# -- inside the child process ---------------------------------------------------------------


def _read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's bytes, or None when the parent closed the channel."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def _serve(batches: BatchStore, channel: socket.socket) -> None:
    """Answer one channel's batches until the parent closes it (or the child is stopping)."""
    with channel, channel.makefile("rb") as incoming, contextlib.suppress(ConnectionError):
        # A ConnectionError: the worker's loop closed its end; it waits for nothing more here.
        while (frame := _read_frame(incoming)) is not None:
            deliveries: list[Signed] = pickle.loads(frame)  # noqa: S301 - from our parent
            try:
                answers = [_sendable(answer) for answer in batches.write_signed(deliveries)]
            except Exception as exc:  # never leave the parent's requests waiting
                log.exception("webhook batch failed unexpectedly")
                answers = [_sendable(exc)] * len(deliveries)
            payload = pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL)
            channel.sendall(_LENGTH.pack(len(payload)) + payload)


def _sendable(answer: Answer) -> Answer:
    """An answer that survives pickling: receipts and our own refusals as they are."""
    if isinstance(answer, Receipt | ProcessorError):
        return answer
    return RuntimeError(f"{type(answer).__name__}: {answer}")


def main(control_fd: int) -> None:
    """The child: serve every channel the worker sends over `control_fd` until it closes."""
    # Ctrl-C or a service manager's SIGTERM reaches the whole process group: the child stops
    # when its worker closes the control socket, after answering the batch it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = json.loads(sys.stdin.buffer.read())
    configure_logging(config["log_format"])
    engine = make_engine(config["database_url"])
    batches = BatchStore(engine, utc_now)
    # What start-up built lives as long as the process: keep it out of later collections.
    gc.collect()
    gc.freeze()
    control = socket.socket(fileno=control_fd)
    channels: list[socket.socket] = []
    servers: list[threading.Thread] = []
    while True:
        try:
            _message, fds, _flags, _address = socket.recv_fds(control, 1, 1)
        except OSError:
            break
        if not fds:  # the parent closed the control socket (or died)
            break
        channel = socket.socket(fileno=fds[0])
        channels.append(channel)
        server = threading.Thread(target=_serve, args=(batches, channel), daemon=True)
        server.start()
        servers.append(server)
    # Stopping: each server finishes (and answers) the batch it holds, then reads no more.
    for channel in channels:
        with contextlib.suppress(OSError):  # already closed by its server
            channel.shutdown(socket.SHUT_RD)
    for server in servers:
        server.join(timeout=CHILD_STOP_SECONDS)
    batches.close()
    engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]))
