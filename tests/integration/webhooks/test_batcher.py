"""Group commit: deliveries that wait go in one batch, each is answered after its commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import URL, Connection, Engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import StripeEvent
from processor.webhooks import batcher as batcher_module
from processor.webhooks import store as store_module
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.batcher import WebhookBatcher, default_batches_in_flight
from processor.webhooks.envelope import parse_event
from tests.fixtures.database import FakeClock
from tests.fixtures.events import body_of, payment_intent, stripe_event

T = TypeVar("T")


def deliveries(
    count: int, tag: str, event_type: str = "payment_intent.succeeded"
) -> list[Delivery]:
    return [
        Delivery(parse_event(body_of(stripe_event(
            event_type, payment_intent(f"pi_{tag}{n}"), event_id=f"evt_{tag}{n:03d}"
        ))), 0)
        for n in range(count)
    ]


def run(batcher: WebhookBatcher, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on an event loop of a thread of its own, as a web worker's loop is (the test's
    thread may already run one, e.g. Playwright's), then close the batcher on the same loop:
    its connections belong to the loop that opened them, as in a web worker."""

    async def then_close() -> T:
        try:
            return await coroutine
        finally:
            await batcher.aclose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, then_close()).result(timeout=60)


def stored(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(StripeEvent.id)))


RecordBatch = Callable[..., list[Outcome]]


def wrap_batches(monkeypatch: pytest.MonkeyPatch, wrap: Callable[[RecordBatch], RecordBatch]) -> None:
    """Wrap what writes a batch: on the event loop (PostgreSQL) or on the thread (SQLite)."""
    for name in ("record_batch", "record_batch_at_once"):
        monkeypatch.setattr(batcher_module, name, wrap(getattr(batcher_module, name)))


def test_deliveries_that_wait_go_in_one_batch(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[int] = []

    def counting(record: RecordBatch) -> RecordBatch:
        def counted(connection: Connection, batch: Sequence[Delivery], *rest: Any) -> list[Outcome]:
            batches.append(len(batch))
            return record(connection, batch, *rest)

        return counted

    wrap_batches(monkeypatch, counting)
    batcher = WebhookBatcher(engine, clock)
    burst = deliveries(40, "burst")

    async def deliver_all() -> list[Outcome]:
        return await asyncio.gather(*(batcher.submit(d) for d in [*burst, burst[0]]))

    outcomes = run(batcher, deliver_all())
    assert outcomes == [Outcome.PROCESSED] * 40 + [Outcome.DUPLICATE]
    assert batches == [41]  # everything waited for the first batch to start
    assert stored(sessions) == {d.event.id for d in burst}


def test_a_batch_starts_at_once_when_nothing_waits(engine: Engine, clock: FakeClock) -> None:
    batcher = WebhookBatcher(engine, clock)

    async def one_by_one() -> list[Outcome]:
        return [await batcher.submit(d) for d in deliveries(3, "alone")]

    assert run(batcher, one_by_one()) == [Outcome.PROCESSED] * 3


@contextmanager
def database_held(engine: Engine) -> Iterator[None]:
    """Another transaction holds what a webhook batch needs first: on SQLite the write lock,
    on PostgreSQL the lock every batch of PaymentIntent events takes (`db.locks`)."""
    with engine.connect() as connection, connection.begin():  # SQLite: BEGIN IMMEDIATE
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('pi_cancel0', 0))"))
        yield


def test_a_caller_that_stops_waiting_does_not_disturb_its_batch(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    batcher = WebhookBatcher(engine, clock)
    gone, staying = deliveries(2, "cancel")

    async def scenario() -> Outcome:
        with database_held(engine):
            leaving = asyncio.ensure_future(batcher.submit(gone))
            waiting = asyncio.ensure_future(batcher.submit(staying))
            await asyncio.sleep(0.2)  # the batch has started, and waits for the database
            leaving.cancel()
        return await waiting

    assert run(batcher, scenario()) is Outcome.PROCESSED
    assert stored(sessions) == {gone.event.id, staying.event.id}


def test_a_batch_that_breaks_unexpectedly_answers_every_delivery_unavailable(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_record: RecordBatch) -> RecordBatch:
        def breaking(*_args: Any) -> list[Outcome]:
            raise RuntimeError("a bug")

        return breaking

    wrap_batches(monkeypatch, broken)
    batcher = WebhookBatcher(engine, clock)

    async def deliver_all() -> list[Outcome]:
        return await asyncio.gather(*(batcher.submit(d) for d in deliveries(3, "broken")))

    assert run(batcher, deliver_all()) == [Outcome.UNAVAILABLE] * 3
    assert stored(sessions) == set()


def test_two_batches_in_flight_store_each_event_once(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    batcher = WebhookBatcher(engine, clock, batches_in_flight=2, max_batch=5)
    burst = deliveries(30, "flight")

    async def deliver_all() -> list[Outcome]:
        return await asyncio.gather(*(batcher.submit(d) for d in burst + burst))

    outcomes = run(batcher, deliver_all())
    assert sorted(o.value for o in outcomes) == ["duplicate"] * 30 + ["processed"] * 30
    assert stored(sessions) == {d.event.id for d in burst}


def terminate_batch_connections(engine: Engine) -> None:
    """What a server restart does to the batches' connections to this database."""
    with engine.connect() as other:
        other.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = :name AND datname = current_database()"
        ), {"name": batcher_module.APPLICATION_NAME})


def test_a_drain_whose_connection_died_answers_that_batch_unavailable_then_reconnects(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite batches open their connection on a thread, per batch")
    killed: list[bool] = []

    def killing_the_connection_after_the_first(record: RecordBatch) -> RecordBatch:
        def killing(connection: Connection, batch: Sequence[Delivery], *rest: Any) -> list[Outcome]:
            outcomes = record(connection, batch, *rest)
            if not killed:
                killed.append(True)
                terminate_batch_connections(engine)
            return outcomes

        return killing

    wrap_batches(monkeypatch, killing_the_connection_after_the_first)
    # One drain writes the three deliveries one by one on the connection it checked out.
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1, max_batch=1)
    first, second, third = deliveries(3, "reconnect")

    async def deliver_all() -> list[Outcome]:
        return await asyncio.gather(*(batcher.submit(d) for d in (first, second, third)))

    outcomes = run(batcher, deliver_all())
    # The second finds the connection dead (503, Stripe delivers it again); the drain gives
    # the connection back, and the third goes on a fresh one.
    assert outcomes == [Outcome.PROCESSED, Outcome.UNAVAILABLE, Outcome.PROCESSED]
    assert stored(sessions) == {first.event.id, third.event.id}


def counting_checkouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the checkouts from the pool of the batcher's async engine (each one pings)."""
    checkouts: list[int] = []
    make = batcher_module.make_async_engine

    def counted(url: URL, *, application_name: str) -> AsyncEngine:
        async_engine = make(url, application_name=application_name)
        event.listen(async_engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
        return async_engine

    monkeypatch.setattr(batcher_module, "make_async_engine", counted)
    return checkouts


def one_drain_after_another(batcher: WebhookBatcher, tag: str) -> list[Outcome]:
    """Three deliveries, each submitted once the one before it is answered: three drains.
    (Of a type we ignore: they take no locks, so a drain ends as soon as its batch is
    answered; one whose batch took locks first lets them go, and takes whatever arrived
    meanwhile.)"""

    async def deliver_one_by_one() -> list[Outcome]:
        ignored = deliveries(3, tag, "payment_intent.created")
        return [await batcher.submit(delivery) for delivery in ignored]

    return run(batcher, deliver_one_by_one())


@pytest.mark.parametrize("max_idle", [60.0, -1.0], ids=["recent", "idle too long"])
def test_a_drain_takes_over_the_connection_of_the_drain_before_it_unless_idle_too_long(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, max_idle: float
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite batches open their connection on a thread, per batch")
    checkouts = counting_checkouts(monkeypatch)
    monkeypatch.setattr(batcher_module, "SPARE_MAX_IDLE_SECONDS", max_idle)
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)

    assert one_drain_after_another(batcher, f"spare{max_idle:+.0f}") == [Outcome.IGNORED] * 3
    assert len(checkouts) == (1 if max_idle > 0 else 3)


def test_a_parked_connection_the_server_dropped_is_given_back_and_the_next_drain_reconnects(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite batches open their connection on a thread, per batch")
    monkeypatch.setattr(batcher_module, "SPARE_MAX_IDLE_SECONDS", -1.0)  # always too old
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)
    first, second = deliveries(2, "dropped")

    async def with_a_restart_between() -> list[Outcome]:
        outcomes = [await batcher.submit(first)]
        terminate_batch_connections(engine)
        return [*outcomes, await batcher.submit(second)]

    assert run(batcher, with_a_restart_between()) == [Outcome.PROCESSED] * 2


def test_closing_the_batcher_closes_the_connection_parked_for_the_next_drain(
    engine: Engine, clock: FakeClock
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite batches open their connection on a thread, per batch")
    with engine.connect() as connection:
        started = connection.scalar(text("SELECT clock_timestamp()"))
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)
    assert one_drain_after_another(batcher, "parked") == [Outcome.IGNORED] * 3

    deadline = time.monotonic() + 10
    while batch_connections_since(engine, started) and time.monotonic() < deadline:
        time.sleep(0.05)  # a backend ends a moment after its client hangs up
    assert batch_connections_since(engine, started) == 0


def batch_connections_since(engine: Engine, started: datetime) -> int:
    """Batch connections to this database opened since `started` and still open."""
    with engine.connect() as connection:
        return int(connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
            " AND datname = current_database() AND backend_start >= :started"
        ), {"name": batcher_module.APPLICATION_NAME, "started": started}))


def test_a_lone_worker_on_postgresql_writes_two_batches_at_a_time_one_of_several_writes_one(
    engine: Engine,
) -> None:
    postgresql = engine.dialect.name == "postgresql"
    assert default_batches_in_flight(engine, web_workers=1) == (2 if postgresql else 1)
    assert default_batches_in_flight(engine, web_workers=2) == 1


def test_a_batch_that_loses_a_lock_race_runs_again_whole(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL breaks a deadlock by aborting one of the transactions. asyncpg reports it
    by a generic error class: the batch tells it by its SQLSTATE and runs again, whole. (A
    batch with an event twice, which is written in a transaction: see `one_statement`.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no lock races")
    apply = store_module.apply_events
    attempts: list[int] = []

    def losing_the_first_race(
        connection: Connection, batch: Sequence[Delivery], *, now: datetime
    ) -> list[Outcome]:
        attempts.append(len(batch))
        if len(attempts) == 1:
            connection.exec_driver_sql(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected'"
                " USING ERRCODE = 'deadlock_detected'; END $$"
            )
        return apply(connection, batch, now=now)

    monkeypatch.setattr(store_module, "apply_events", losing_the_first_race)
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)
    burst = deliveries(3, "race")

    async def deliver_all() -> list[Outcome]:
        return await asyncio.gather(*(batcher.submit(d) for d in [*burst, burst[0]]))

    assert run(batcher, deliver_all()) == [Outcome.PROCESSED] * 3 + [Outcome.DUPLICATE]
    assert attempts == [4, 4]
    assert stored(sessions) == {d.event.id for d in burst}
