"""The receiver's writer: verifies, parses and stores deliveries, grouping whatever arrived
while the previous commit ran into one transaction (group commit).

`BatchStore` does one batch's work in the caller's thread. `WebhookWriter` runs it in threads
of this process (`WEBHOOK_WRITER=thread`); `writer_process.ChildProcessWriter` runs it in a
child process (the default, see there for why).

Why: most of an event's cost is its transaction's fixed cost — BEGIN and COMMIT, the
connection checkout, and on SQLite the single write lock and the fsync that makes the commit
survive a power loss. Shared by the events that queued meanwhile, it is paid once per batch.
If a handler raises, the batch is rolled back and its events are recorded again one per
transaction, so the failing one is stored as failed (and answered 500) on its own. A
delivery's future resolves only after COMMIT has returned, so a 2xx is never sent for an
event that is not durably stored; if the database cannot commit, every event of the batch is
answered UNAVAILABLE (503) and nothing of it is kept.

The endpoint awaits `store` (an asyncio future) rather than `submit` (a concurrent one): a
batch's answers reach each event loop in one `call_soon_threadsafe`, so the loop wakes once
per batch instead of once per delivery, and no concurrent future is chained to an asyncio one.

On SQLite every connection runs with `synchronous=FULL` (processor.db.engine): in WAL mode
NORMAL survives a crash of the process but may lose the last commits on a power loss; FULL
syncs the WAL at every commit, which batching makes affordable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from processor.clock import Clock
from processor.db.write_gate import write_gate_for
from processor.errors import ProcessorError
from processor.webhooks.envelope import Event, parse_event
from processor.webhooks.store import UNAVAILABLE_ERRORS, Outcome, record_batch, record_event
from processor.webhooks.verify import Signed, check_signature

log = logging.getLogger(__name__)

MAX_BATCH = 64
POSTGRESQL_THREADS = 4


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened to one delivery: the web layer maps `outcome` to a status and counts it."""

    outcome: Outcome
    event_id: str
    event_type: str
    secret_index: int


@dataclass(slots=True)
class _Delivery:
    body: bytes
    signature_header: str | None
    future: Future[Receipt] | asyncio.Future[Receipt]
    loop: asyncio.AbstractEventLoop | None = None  # whose thread may resolve an asyncio future
    answered: bool = False


Answer = Receipt | BaseException


class WebhookWriter:
    """Accepts raw deliveries from any thread; answers each with a future `Receipt`.

    The future raises `SignatureInvalid` or `PayloadInvalid` for a delivery that must be
    refused (nothing is written for it).
    """

    def __init__(
        self,
        engine: Engine,
        secrets: Sequence[str],
        tolerance_seconds: int,
        clock: Clock,
        *,
        max_batch: int = MAX_BATCH,
        threads: int | None = None,
    ) -> None:
        self.secrets = tuple(secrets)
        self.tolerance_seconds = tolerance_seconds
        self.clock = clock
        self.batches = BatchStore(engine, clock)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"webhook-writer-{n}", daemon=True)
            for n in range(threads or writer_threads_for(engine))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, body: bytes, signature_header: str | None) -> Future[Receipt]:
        """For callers outside an event loop: the future resolves in the writer thread."""
        future: Future[Receipt] = Future()
        self._queue.put(_Delivery(body, signature_header, future))
        return future

    async def store(self, body: bytes, signature_header: str | None) -> Receipt:
        """For an event loop: the receipt arrives with the rest of its batch's (see module doc).

        Cancelling the caller is harmless: its answer is dropped when it arrives.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self._queue.put(_Delivery(body, signature_header, future, loop))
        return await future

    def close(self) -> None:
        """Finish what was submitted, then stop the threads."""
        for _thread in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        self.batches.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write(batch)
            except BaseException as exc:  # never leave a request waiting forever
                log.exception("webhook batch failed unexpectedly")
                _answer([(delivery, exc) for delivery in batch if not delivery.answered])
            if stop:
                return

    def _write(self, batch: list[_Delivery]) -> None:
        now = self.clock().timestamp()

        def verified(delivery: _Delivery) -> Verified:
            signed = check_signature(
                delivery.body, delivery.signature_header, self.secrets, self.tolerance_seconds, now
            )
            return _parse(signed)

        accepted, refused = _split(verified, batch)
        _answer([(batch[index], error) for index, error in refused])
        if accepted:  # a refusal need not wait for the commit
            receipts = self.batches.store([event for _index, event in accepted])
            _answer(
                [
                    (batch[index], receipt)
                    for (index, _event), receipt in zip(accepted, receipts, strict=True)
                ]
            )


Verified = tuple[Event, int]  # the parsed event and the index of the secret that signed it
T = TypeVar("T")


class BatchStore:
    """Parses and stores batches of signature-checked deliveries, in the caller's thread; used
    by the writer threads here and by the writer process (`writer_process`)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite: several processes' writers take turns at the file without SQLite's sleeps.
        self._write_gate = write_gate_for(engine)

    def write_signed(self, deliveries: Sequence[Signed]) -> list[Answer]:
        """Each signature-checked delivery's answer, in order: stored, or refused as not an
        event."""
        answers: list[Answer | None] = [None] * len(deliveries)
        accepted, refused = _split(_parse, deliveries)
        for index, error in refused:
            answers[index] = error
        receipts = self.store([event for _index, event in accepted]) if accepted else []
        for (index, _event), receipt in zip(accepted, receipts, strict=True):
            answers[index] = receipt
        return answers  # type: ignore[return-value]

    def store(self, events: list[Verified]) -> list[Receipt]:
        """Store verified events in one transaction where possible; a receipt for each."""
        now = self.clock()
        try:
            with self.engine.connect() as connection, self._write_gate:
                outcomes = self._store_batch(connection, events, now)
        except UNAVAILABLE_ERRORS as exc:
            log.warning(
                "%d webhook event(s) not stored, database unavailable: %s",
                len(events),
                type(exc).__name__,
            )
            outcomes = [Outcome.UNAVAILABLE] * len(events)
        return [
            Receipt(outcome, event.id, event.type, secret_index)
            for (event, secret_index), outcome in zip(events, outcomes, strict=True)
        ]

    def close(self) -> None:
        self._write_gate.close()

    def _store_batch(
        self, connection: Connection, events: list[tuple[Event, int]], now: datetime
    ) -> list[Outcome]:
        try:
            with Session(bind=connection) as session, session.begin():
                return record_batch(session, events, now=now)
        except UNAVAILABLE_ERRORS as exc:
            if not _lost_a_lock_race(exc):
                raise
        except Exception:  # noqa: S110 - a handler raised: handled below, event by event
            pass
        # Nothing of the batch was kept (a handler raised, or PostgreSQL broke a deadlock
        # between two batches). Record each event in a transaction of its own: only a
        # failing event is stored as failed and answered 500.
        one_by_one = sessionmaker(bind=connection)
        return [
            record_event(one_by_one, event, now=now, secret_index=secret_index)
            for event, secret_index in events
        ]

def _parse(signed: Signed) -> Verified:
    payload, secret_index = signed
    return parse_event(payload), secret_index


def _split(
    step: Callable[[T], Verified], items: Sequence[T]
) -> tuple[list[tuple[int, Verified]], list[tuple[int, ProcessorError]]]:
    """`step` applied to each item: (position, result) pairs, and (position, refusal) pairs."""
    accepted: list[tuple[int, Verified]] = []
    refused: list[tuple[int, ProcessorError]] = []
    for index, item in enumerate(items):
        try:
            accepted.append((index, step(item)))
        except ProcessorError as exc:
            refused.append((index, exc))
    return accepted, refused


def writer_threads_for(engine: Engine) -> int:
    """SQLite has one writer at a time: a second thread would only wait for the lock.
    PostgreSQL overlaps one batch's round trips with another's work."""
    return 1 if engine.dialect.name == "sqlite" else POSTGRESQL_THREADS


def _answer(answers: list[tuple[_Delivery, Answer]]) -> None:
    """Resolve the deliveries' futures: concurrent ones here, asyncio ones in their loop, with
    one hand-off per loop for the whole list."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Delivery, Answer]]] = {}
    for delivery, answer in answers:
        delivery.answered = True
        if delivery.loop is None:
            _settle(delivery, answer)
        else:
            by_loop.setdefault(delivery.loop, []).append((delivery, answer))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, settled)
        except RuntimeError:  # the loop is closed: nobody is left waiting for these
            log.warning("%d webhook answer(s) dropped, their event loop is closed", len(settled))


def _settle_all(answers: list[tuple[_Delivery, Answer]]) -> None:
    for delivery, answer in answers:
        _settle(delivery, answer)


def _settle(delivery: _Delivery, answer: Answer) -> None:
    """Set one future, unless its caller gave up waiting (cancelled it)."""
    future = delivery.future
    if isinstance(future, Future):
        if not future.set_running_or_notify_cancel():  # no cancel can slip in after this
            return
    elif future.done():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)


def _lost_a_lock_race(exc: Exception) -> bool:
    """PostgreSQL aborted the batch to break a deadlock (or a serialisation conflict)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in {"40P01", "40001"}

