"""Group commit for verified deliveries: one transaction per batch, and no timer.

Deliveries that arrive while a batch is being written wait for it; as soon as it commits,
everything that waited goes in the next one. At low load a batch holds one delivery and goes
at once; under load a batch holds whatever arrived during the previous commit, so the
transaction's fixed cost (BEGIN, COMMIT, the fsync, the round trips) is paid once for many.
Each delivery is answered after its own batch has committed: a 2xx means stored and applied.

Where a batch runs depends on the database:

- PostgreSQL: on the event loop, through asyncpg, on a connection in autocommit (SQLAlchemy's
  `run_sync` runs the synchronous code, `store.record_batch_at_once`, and awaits each
  round trip: one for most batches, see `one_statement`). A lone
  web worker keeps two batches in flight, so that one batch's Python work overlaps the
  other's wait for the server; with several workers, their batches overlap each other, and
  a second batch per worker would only split the waiting deliveries into smaller batches
  (each pays the round trips in full). A thread per batch did the same but paid for handing
  the GIL back and forth at every round trip: about a fifth of the receiver's CPU
  (docs/performance.md).
- SQLite: on one thread of this process. It runs in process and never waits for a server,
  and it has one writer at a time, so a second batch would only wait for the lock.

On PostgreSQL a drain (the batches written back to back while deliveries keep waiting) keeps
one connection. Under load a drain often ends because the other one took what waited, and
the next starts a moment later: a drain that ends parks its connection for the next one. A
fresh checkout would ping the server first, three round trips (BEGIN, a no-op, ROLLBACK)
before the batch's own. A connection parked for longer than `SPARE_MAX_IDLE_SECONDS` goes
back to the pool, and the next drain checks out a pinged one.

Concurrent batches lock rows in one order (sorted keys), so they cannot deadlock each other.
A caller that stops waiting (the client went away) does not disturb its batch: its answer is
dropped when it comes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from processor.clock import Clock
from processor.db.engine import AUTOCOMMIT, make_async_engine
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.store import (
    database_unavailable,
    record_batch,
    record_batch_at_once,
    unavailable,
)

log = logging.getLogger(__name__)

MAX_BATCH = 128
APPLICATION_NAME = "processor webhooks"  # the batches' connections in pg_stat_activity
THREAD_NAME_PREFIX = "webhook-batch"
LONE_WORKER_BATCHES_IN_FLIGHT = 2  # PostgreSQL, one web worker
# A parked connection idle longer than this may have been dropped meanwhile (a restart, an
# idle timeout): it goes back to the pool, whose checkout pings.
SPARE_MAX_IDLE_SECONDS = 1.0


def default_batches_in_flight(engine: Engine, web_workers: int) -> int:
    """How many batches one web worker writes at a time (see the module's docstring)."""
    if engine.dialect.name == "postgresql" and web_workers == 1:
        return LONE_WORKER_BATCHES_IN_FLIGHT
    return 1


@dataclass
class _Waiting:
    """The deliveries of one event loop waiting for the next batch."""

    deliveries: list[tuple[Delivery, asyncio.Future[Outcome]]] = field(default_factory=list)
    draining: int = 0  # batches being written, counted when they start and when they end
    # Held here: the event loop keeps only weak references to its tasks.
    drainers: set[asyncio.Task[None]] = field(default_factory=set)
    # PostgreSQL: the connections of drains that ended, each with the loop time it was parked.
    spares: list[tuple[float, _DrainConnection]] = field(default_factory=list)


class WebhookBatcher:
    """Takes verified deliveries from the event loop; answers each after its batch commits."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        batches_in_flight: int | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._max_batch = max_batch
        on_the_loop = engine.dialect.name == "postgresql"
        self._in_flight = batches_in_flight or default_batches_in_flight(engine, web_workers=1)
        # PostgreSQL: an async engine, made on first use (its pool belongs to this batcher).
        self._async_engine: AsyncEngine | None = None
        self._executor = None if on_the_loop else ThreadPoolExecutor(
            max_workers=self._in_flight, thread_name_prefix=THREAD_NAME_PREFIX
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

    async def aclose(self) -> None:
        """Stop the thread, or close the connections on the loop that used them (the app is
        shutting down: the server has answered the requests in flight, so no batch is being
        written)."""
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
        waiting = self._waiting.get(asyncio.get_running_loop())
        if waiting is not None:
            await _close_all(waiting.spares)
        if self._async_engine is not None:
            engine, self._async_engine = self._async_engine, None
            await engine.dispose()

    async def _drain(self, loop: asyncio.AbstractEventLoop, waiting: _Waiting) -> None:
        """Write batches while deliveries wait; each takes everything that waited meanwhile.

        On PostgreSQL the batches of one drain share a connection, taken over from the drain
        before it (see the module's docstring)."""
        connection: _DrainConnection | None = None
        try:
            if self._executor is None:
                connection = await self._take_spare(loop, waiting)
            while waiting.deliveries:
                batch = waiting.deliveries[: self._max_batch]
                del waiting.deliveries[: self._max_batch]
                outcomes = await self._write(loop, connection, [d for d, _ in batch])
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            waiting.draining -= 1
            if connection is not None:
                waiting.spares.append((loop.time(), connection))

    async def _take_spare(
        self, loop: asyncio.AbstractEventLoop, waiting: _Waiting
    ) -> _DrainConnection:
        """The connection parked last, if it has not been idle too long; otherwise a new one,
        checked out at its first batch. The others parked before it are at least as old."""
        if waiting.spares:
            parked_at, connection = waiting.spares.pop()
            if loop.time() - parked_at <= SPARE_MAX_IDLE_SECONDS:
                return connection
            waiting.spares.append((parked_at, connection))
            await _close_all(waiting.spares)
        return _DrainConnection(self._postgresql_engine)

    async def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: _DrainConnection | None,
        deliveries: Sequence[Delivery],
    ) -> list[Outcome]:
        now = self._clock()
        try:
            if connection is None:
                return await loop.run_in_executor(
                    self._executor, self._record_on_thread, deliveries, now
                )
            return await connection.record(deliveries, now)
        except Exception as exc:
            if database_unavailable(exc):  # no connection to be had
                return unavailable(deliveries, exc)
            # A bug, or the app is closing: nothing is acknowledged.
            log.exception("a webhook batch of %d could not be written", len(deliveries))
            return [Outcome.UNAVAILABLE] * len(deliveries)

    def _postgresql_engine(self) -> AsyncEngine:
        if self._async_engine is None:
            self._async_engine = make_async_engine(
                self._engine.url, application_name=APPLICATION_NAME
            )
        return self._async_engine

    def _record_on_thread(self, deliveries: Sequence[Delivery], now: datetime) -> list[Outcome]:
        with self._engine.connect() as connection:
            return record_batch(connection, deliveries, now)


class _DrainConnection:
    """The connection a drain's batches share, checked out at its first batch. If the server
    drops it, the batch on it is answered unavailable and SQLAlchemy invalidates it: the next
    batch's first statement checks out a fresh, pinged one. A batch that broke (a bug, or
    the task was cancelled) gives it back."""

    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def record(self, deliveries: Sequence[Delivery], now: datetime) -> list[Outcome]:
        if self._connection is None:
            connection = await self._engine().connect()
            self._connection = await connection.execution_options(isolation_level=AUTOCOMMIT)
        try:
            outcomes = await self._connection.run_sync(record_batch_at_once, deliveries, now)
        except BaseException:
            await self.close()
            raise
        if self._connection.invalidated:
            # The server dropped it (the batch was answered unavailable). SQLAlchemy would
            # open the next one without autocommit: the next batch starts a new one.
            await self.close()
        return outcomes

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()


async def _close_all(spares: list[tuple[float, _DrainConnection]]) -> None:
    """Give parked connections back to the pool."""
    while spares:
        _parked_at, connection = spares.pop()
        await connection.close()
