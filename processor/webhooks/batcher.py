"""Group commit for verified deliveries: one transaction per batch, and no timer.

Deliveries that arrive while a batch is being written wait for it; as soon as it commits,
everything that waited goes in the next one. At low load a batch holds one delivery and goes
at once; under load a batch holds whatever arrived during the previous commit, so the
transaction's fixed cost (BEGIN, COMMIT, the fsync, the round trips) is paid once for many.
Each delivery is answered after its own batch has committed: a 2xx means stored and applied.

The database work runs on threads of this process, so the event loop keeps reading and
verifying requests meanwhile: one on SQLite (one writer at a time), two on PostgreSQL, so
that one batch's Python work overlaps the other's wait for the server. Concurrent batches
lock rows in one order (sorted keys), so they cannot deadlock each other. A caller that stops
waiting (the client went away) does not disturb its batch: its answer is dropped when it comes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from processor.clock import Clock
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.store import record_events

log = logging.getLogger(__name__)

MAX_BATCH = 128
POSTGRESQL_BATCHES_IN_FLIGHT = 2


@dataclass
class _Waiting:
    """The deliveries of one event loop waiting for the next batch."""

    deliveries: list[tuple[Delivery, asyncio.Future[Outcome]]] = field(default_factory=list)
    draining: int = 0  # batches being written, counted when they start and when they end
    # Held here: the event loop keeps only weak references to its tasks.
    drainers: set[asyncio.Task[None]] = field(default_factory=set)


def batches_in_flight_for(dialect_name: str) -> int:
    """SQLite has one writer at a time: a second batch would only wait for the lock."""
    return 1 if dialect_name == "sqlite" else POSTGRESQL_BATCHES_IN_FLIGHT


class WebhookBatcher:
    """Takes verified deliveries from the event loop; answers each after its batch commits."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        batches_in_flight: int = 1,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_batch = max_batch
        self._in_flight = batches_in_flight
        self._executor = ThreadPoolExecutor(
            max_workers=self._in_flight, thread_name_prefix="webhook-batch"
        )
        # One queue per event loop: futures belong to the loop that made them.
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiting] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, delivery: Delivery) -> Outcome:
        loop = asyncio.get_running_loop()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = _Waiting()
        future: asyncio.Future[Outcome] = loop.create_future()
        waiting.deliveries.append((delivery, future))
        if waiting.draining < self._in_flight:
            waiting.draining += 1
            drainer = loop.create_task(self._drain(loop, waiting))
            waiting.drainers.add(drainer)
            drainer.add_done_callback(waiting.drainers.discard)
        return await future

    def close(self) -> None:
        """Wait for the batch being written, then stop the thread (the app is shutting down)."""
        self._executor.shutdown(wait=True)

    async def _drain(self, loop: asyncio.AbstractEventLoop, waiting: _Waiting) -> None:
        """Write batches while deliveries wait; each takes everything that waited meanwhile."""
        try:
            while waiting.deliveries:
                batch = waiting.deliveries[: self._max_batch]
                del waiting.deliveries[: self._max_batch]
                outcomes = await self._write(loop, [delivery for delivery, _ in batch])
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            waiting.draining -= 1

    async def _write(
        self, loop: asyncio.AbstractEventLoop, deliveries: list[Delivery]
    ) -> list[Outcome]:
        try:
            return await loop.run_in_executor(self._executor, self._record, deliveries)
        except Exception:  # a bug, or the app is closing: nothing is acknowledged
            log.exception("a webhook batch of %d could not be written", len(deliveries))
            return [Outcome.UNAVAILABLE] * len(deliveries)

    def _record(self, deliveries: list[Delivery]) -> list[Outcome]:
        return record_events(self._sessions, deliveries, now=self._clock())
