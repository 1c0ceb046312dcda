"""Recording events: once per id, duplicates counted, failures stored and re-applied, 503 safety."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import make_async_engine, make_engine
from processor.db.models import Notification, RecoveryCase, StripeEvent
from processor.recovery.cases import WRITTEN_CASES
from processor.webhooks.apply import Delivery, Outcome, apply_events
from processor.webhooks.envelope import Event, parse_event, without_client_secrets
from processor.webhooks.reducers import REDUCERS, on_payment_intent_payment_failed
from processor.webhooks.store import database_unavailable, record_event, record_events
from tests.fixtures.database import FakeClock
from tests.fixtures.events import (
    body_of,
    decline,
    payment_intent,
    setup_intent,
    stripe_event,
)
from tests.integration.webhooks.conftest import Deliver


def failed_payment(**overrides: Any) -> dict[str, Any]:
    error = decline("card_declined", "insufficient_funds")
    return stripe_event(
        "payment_intent.payment_failed",
        payment_intent("pi_store", status="requires_payment_method", last_payment_error=error),
        **overrides,
    )


def test_a_new_event_is_stored_processed_with_its_side_effects(
    deliver: Deliver, one: Callable[..., Any], clock: FakeClock
) -> None:
    document = failed_payment(event_id="evt_new")
    assert deliver(document) is Outcome.PROCESSED
    row = one(StripeEvent, id="evt_new")
    assert (row.status, row.delivery_count, row.attempt_count) == ("processed", 1, 1)
    assert row.type == "payment_intent.payment_failed"
    assert row.object_id == "pi_store"
    assert row.secret_index == 0
    assert row.source == "webhook"
    assert row.received_at == row.last_received_at == row.processed_at == clock()
    # As delivered, but for the client secret, which is not kept where dashboards read.
    assert row.payload == without_client_secrets(body_of(document))
    assert "pi_x_secret_y" not in row.payload
    assert row.error is None
    assert one(RecoveryCase, payment_intent_id="pi_store").failure_count == 1


def test_a_duplicate_only_counts_the_delivery(
    deliver: Deliver, one: Callable[..., Any], count: Callable[..., int], clock: FakeClock
) -> None:
    document = failed_payment(event_id="evt_dup")
    deliver(document)
    first = clock()
    clock.advance(minutes=5)
    assert deliver(document) is Outcome.DUPLICATE
    assert deliver(document) is Outcome.DUPLICATE
    row = one(StripeEvent, id="evt_dup")
    assert (row.delivery_count, row.attempt_count) == (3, 1)
    assert (row.received_at, row.last_received_at, row.processed_at) == (first, clock(), first)
    assert one(RecoveryCase, payment_intent_id="pi_store").failure_count == 1
    assert count(Notification) == 1


def test_an_event_type_without_a_handler_is_stored_as_ignored(
    deliver: Deliver, one: Callable[..., Any]
) -> None:
    document = stripe_event("charge.succeeded", {"id": "ch_1", "object": "charge"}, event_id="evt_i")
    assert deliver(document) is Outcome.IGNORED
    assert deliver(document) is Outcome.DUPLICATE
    row = one(StripeEvent, id="evt_i")
    assert (row.status, row.attempt_count, row.delivery_count) == ("ignored", 0, 2)
    assert row.processed_at is None


class FailsOnce:
    """Reduces the event as the real reducer does, but raises the first time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: Event) -> tuple[Any, ...]:
        self.calls += 1
        changes = on_payment_intent_payment_failed(event)
        if self.calls == 1:
            raise RuntimeError("mail template missing")
        return changes


def test_a_failing_handler_rolls_back_is_stored_failed_and_is_reapplied_on_redelivery(
    deliver: Deliver,
    one: Callable[..., Any],
    count: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", FailsOnce())
    document = failed_payment(event_id="evt_flaky")
    assert deliver(document) is Outcome.FAILED
    row = one(StripeEvent, id="evt_flaky")
    assert (row.status, row.delivery_count, row.attempt_count) == ("failed", 1, 1)
    assert row.error == "RuntimeError: mail template missing"
    assert row.processed_at is None
    assert row.payload == without_client_secrets(body_of(document))
    assert count(RecoveryCase) == 0 and count(Notification) == 0

    assert deliver(document) is Outcome.REAPPLIED
    row = one(StripeEvent, id="evt_flaky")
    assert (row.status, row.delivery_count, row.attempt_count, row.error) == (
        "processed", 2, 2, None,
    )
    assert one(RecoveryCase, payment_intent_id="pi_store").failure_count == 1
    assert count(Notification) == 1
    assert deliver(document) is Outcome.DUPLICATE


def test_a_handler_that_keeps_failing_keeps_its_latest_error(
    deliver: Deliver, one: Callable[..., Any]
) -> None:
    broken = failed_payment(event_id="evt_broken")
    del broken["data"]["object"]["amount"]
    assert deliver(broken) is Outcome.FAILED
    assert deliver(broken) is Outcome.FAILED
    row = one(StripeEvent, id="evt_broken")
    assert (row.status, row.delivery_count, row.attempt_count) == ("failed", 2, 2)
    assert row.error == "ValueError: payment intent without amount or currency"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-directory/processor.db",
        "postgresql+psycopg://postgres@127.0.0.1:1/processor?connect_timeout=2",
    ],
)
def test_an_unreachable_database_is_reported_unavailable(url: str, clock: FakeClock) -> None:
    engine = make_engine(url)
    try:
        outcome = record_event(
            engine, parse_event(body_of(failed_payment())), now=clock(), secret_index=0
        )
    finally:
        engine.dispose()
    assert outcome is Outcome.UNAVAILABLE


RAISE_SQLSTATE = "DO $$ BEGIN RAISE EXCEPTION 'raised by a test' USING ERRCODE = '{}'; END $$"


def _raised_through_asyncpg(engine: Engine, sql: str) -> DBAPIError:
    async def raised() -> DBAPIError:
        async_engine = make_async_engine(engine.url, application_name="test")
        try:
            async with async_engine.connect() as connection:
                with pytest.raises(DBAPIError) as caught:
                    await connection.exec_driver_sql(sql)
                return caught.value
        finally:
            await async_engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own, as a web worker's
        return pool.submit(asyncio.run, raised()).result(timeout=30)


@pytest.mark.parametrize(
    ("sqlstate", "is_unavailable"),
    [
        ("57014", True),  # query_canceled (statement_timeout)
        ("57P01", True),  # admin_shutdown
        ("08006", True),  # connection_failure
        ("53300", True),  # too_many_connections
        ("55P03", True),  # lock_not_available
        ("40P01", True),  # deadlock_detected, once the batch has lost its last retry
        ("22P05", False),  # untranslatable_character: this event's data
        ("23505", False),  # unique_violation
        ("54000", False),  # program_limit_exceeded (an index row too large): the data's fault
    ],
)
def test_the_database_is_unavailable_by_the_sqlstate_whichever_driver_reports_it(
    engine: Engine, sqlstate: str, is_unavailable: bool
) -> None:
    """psycopg's sync engine (reconcile, replay) and asyncpg on the event loop (the batches)
    name most server errors differently; the answer (503, or isolate the batch's data) must
    not depend on which one ran the statement."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite reports no SQLSTATE")
    sql = RAISE_SQLSTATE.format(sqlstate)
    with engine.connect() as connection, pytest.raises(DBAPIError) as through_psycopg:
        connection.exec_driver_sql(sql)
    through_asyncpg = _raised_through_asyncpg(engine, sql)
    assert database_unavailable(through_psycopg.value) is is_unavailable
    assert database_unavailable(through_asyncpg) is is_unavailable


@contextmanager
def commits_failing(database_url: str, engine: Engine) -> Iterator[Engine]:
    """An engine whose commits fail as a disk error would make them. On PostgreSQL the
    server fails them (a deferred trigger, run at commit, whether the batch ends with COMMIT
    or is one statement in autocommit); on SQLite the driver's COMMIT does."""
    failing = make_engine(database_url)
    if engine.dialect.name != "postgresql":
        def refuse_commit(_connection: Any) -> None:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

        event.listen(failing, "commit", refuse_commit)
        try:
            yield failing
        finally:
            failing.dispose()
        return
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION test_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'disk I/O error' USING ERRCODE = 'io_error'; END $$"
        )
        connection.exec_driver_sql(
            "CREATE CONSTRAINT TRIGGER test_refuse_commit AFTER INSERT ON recovery_cases"
            " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_commit()"
        )
    try:
        yield failing
    finally:
        failing.dispose()
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER test_refuse_commit ON recovery_cases")
            connection.exec_driver_sql("DROP FUNCTION test_refuse_commit()")


def test_a_commit_that_fails_leaves_nothing_half_written(
    database_url: str, migrated_engine: Engine, engine: Engine, clock: FakeClock
) -> None:
    with commits_failing(database_url, engine) as failing:
        outcome = record_event(
            failing,
            parse_event(body_of(failed_payment(event_id="evt_lost"))),
            now=clock(),
            secret_index=0,
        )
    assert outcome is Outcome.UNAVAILABLE
    with Session(engine) as session:
        assert session.scalars(select(StripeEvent)).all() == []
        assert session.scalars(select(RecoveryCase)).all() == []
        assert session.scalars(select(Notification)).all() == []


def test_ten_threads_delivering_one_event_give_one_row_and_one_set_of_side_effects(
    engine: Engine,
    clock: FakeClock,
    one: Callable[..., Any],
    count: Callable[..., int],
) -> None:
    parsed = parse_event(body_of(failed_payment(event_id="evt_race")))
    barrier = threading.Barrier(10)
    outcomes: list[Outcome] = []

    def post() -> None:
        barrier.wait(timeout=10)
        outcomes.append(record_event(engine, parsed, now=clock(), secret_index=0))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(o.value for o in outcomes) == ["duplicate"] * 9 + ["processed"]
    assert one(StripeEvent, id="evt_race").delivery_count == 10
    assert one(RecoveryCase, payment_intent_id="pi_store").failure_count == 1
    assert count(Notification) == 1


def test_a_batch_inserts_once_per_id_and_settles_each_delivery_as_alone(
    deliver: Deliver,
    sessions: sessionmaker[Session],
    one: Callable[..., Any],
    count: Callable[..., int],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", FailsOnce())
    stored_failed = failed_payment(event_id="evt_b_failed")
    assert deliver(stored_failed) is Outcome.FAILED
    charge = {"id": "ch_b", "object": "charge"}
    settled = stripe_event("charge.succeeded", charge, event_id="evt_b_old")
    assert deliver(settled) is Outcome.IGNORED
    new = stripe_event("payment_intent.succeeded", payment_intent("pi_b"), event_id="evt_b_new")
    ignored = stripe_event("charge.refunded", charge, event_id="evt_b_ign")
    batch = [new, new, ignored, stored_failed, settled]
    deliveries = [Delivery(parse_event(body_of(document)), 1) for document in batch]
    with sessions.begin() as session:
        outcomes = apply_events(session.connection(), deliveries, now=clock())
    assert outcomes == [
        Outcome.PROCESSED, Outcome.DUPLICATE, Outcome.IGNORED, Outcome.REAPPLIED, Outcome.DUPLICATE,
    ]
    rows = {
        event_id: one(StripeEvent, id=event_id)
        for event_id in ("evt_b_new", "evt_b_ign", "evt_b_failed", "evt_b_old")
    }
    assert {event_id: (row.delivery_count, row.status) for event_id, row in rows.items()} == {
        "evt_b_new": (2, "processed"),
        "evt_b_ign": (1, "ignored"),
        "evt_b_failed": (2, "processed"),
        "evt_b_old": (2, "ignored"),
    }
    assert one(RecoveryCase, payment_intent_id="pi_store").failure_count == 1
    assert count(Notification) == 1


def _statements_of_one_batch(
    engine: Engine, documents: list[dict[str, Any]], clock: FakeClock
) -> list[tuple[str, Any]]:
    """The statements `documents`, recorded as one batch, sent (each processed), with their
    parameters."""
    statements: list[tuple[str, Any]] = []

    def collect(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", collect)
    try:
        outcomes = record_events(
            engine, [Delivery(parse_event(body_of(d))) for d in documents], now=clock()
        )
    finally:
        event.remove(engine, "before_cursor_execute", collect)
    assert set(outcomes) == {Outcome.PROCESSED}
    return statements


def test_payloads_are_compressed_with_lz4_where_the_server_has_it(
    engine: Engine, deliver: Deliver
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores payloads as they are")
    with engine.connect() as connection:
        available = connection.exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
            " WHERE name = 'default_toast_compression'"
        ).scalar()
    if not available:
        pytest.skip("this PostgreSQL was built without LZ4")
    document = failed_payment()
    document["data"]["object"]["description"] = "A subscription renewal. " * 200  # 4.8 KB
    assert deliver(document) is Outcome.PROCESSED
    with engine.connect() as connection:
        compression = connection.exec_driver_sql(
            "SELECT pg_column_compression(payload) FROM stripe_events"
        ).scalar_one()
    assert compression == "lz4"


def test_a_batch_of_failures_and_set_ups_is_one_statement_run_twice_at_once_on_postgresql(
    engine: Engine, clock: FakeClock
) -> None:
    """Each round trip costs the receiver more than most statements do (docs/performance.md):
    one statement for the events, the cases with their known outcomes and first emails, the
    set-up attempts, the methods and the charges, sent as one executemany: its first
    execution takes the batch's locks and writes nothing, the second writes the batch."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in process: one statement per table")
    documents = [
        failed_payment(),
        stripe_event("setup_intent.succeeded", setup_intent(payment_method="pm_five")),
    ]
    [(batch, executions)] = _statements_of_one_batch(engine, documents, clock)
    assert batch.startswith("WITH new_events AS ")
    assert f"{WRITTEN_CASES} AS" in batch
    for written in ("stripe_events", "recovery_cases", "notifications", "setup_attempts"):
        assert f"INSERT INTO {written} " in batch
    locks, writes = executions
    assert locks["lock_keys"] == [documents[0]["data"]["object"]["id"]]
    assert locks["event_rows"] == "[]" and writes["lock_keys"] == []
    assert len(orjson.loads(writes["event_rows"])) == 2
