"""PostgreSQL: a batch of new events in one statement after its locks, and the batches that
need a transaction instead (processor.webhooks.one_statement)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import AUTOCOMMIT
from processor.db.locks import SessionLocks
from processor.db.models import Notification, RecoveryCase, StripeEvent
from processor.webhooks import store as store_module
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.batcher import APPLICATION_NAME, WebhookBatcher
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import record_events
from tests.fixtures.database import FakeClock
from tests.fixtures.events import body_of, decline, payment_intent, stripe_event

RAISE_DEADLOCK = (
    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"
)


@pytest.fixture(autouse=True)
def postgresql_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes every batch in a transaction")


def delivery(event_type: str, intent: str, event_id: str, **intent_fields: Any) -> Delivery:
    document = stripe_event(event_type, payment_intent(intent, **intent_fields), event_id=event_id)
    return Delivery(parse_event(body_of(document)), 0)


def failure(intent: str, event_id: str) -> Delivery:
    return delivery(
        "payment_intent.payment_failed", intent, event_id,
        status="requires_payment_method", last_payment_error=decline("card_declined"),
    )


@contextmanager
def statements_sent(engine: Engine) -> Iterator[list[str]]:
    sent: list[str] = []

    def collect(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", collect)


def one_statements(sent: list[str]) -> int:
    return sum(statement.startswith("WITH new_events AS ") for statement in sent)


def test_a_batch_with_an_event_stored_before_is_written_in_a_transaction(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    """The statement cannot tell a duplicate before it has inserted the others: it refuses
    to commit, and the transaction counts the duplicate and applies the new event once."""
    stored_before = failure("pi_dup", "evt_dup_first")
    assert record_events(engine, [stored_before], clock()) == [Outcome.PROCESSED]
    new = failure("pi_new", "evt_dup_new")
    with statements_sent(engine) as sent:
        outcomes = record_events(engine, [stored_before, new], clock())
    assert outcomes == [Outcome.DUPLICATE, Outcome.PROCESSED]
    assert one_statements(sent) == 1  # tried, refused, then the transaction
    with sessions() as session:
        counts = dict(session.execute(select(StripeEvent.id, StripeEvent.delivery_count)).all())
        cases = session.scalars(select(RecoveryCase)).all()
        emails = session.scalars(select(Notification)).all()
    assert counts == {"evt_dup_first": 2, "evt_dup_new": 1}
    assert sorted((case.payment_intent_id, case.failure_count) for case in cases) == [
        ("pi_dup", 1), ("pi_new", 1),
    ]
    assert len(emails) == 2


def test_a_batch_that_closes_a_case_is_written_in_a_transaction(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    """The statement's snapshot does not hold the batch's own success: it refuses to commit,
    and the transaction closes the case the failure before had opened."""
    assert record_events(engine, [failure("pi_won", "evt_won_failed")], clock()) == [
        Outcome.PROCESSED
    ]
    success = delivery("payment_intent.succeeded", "pi_won", "evt_won_succeeded")
    with statements_sent(engine) as sent:
        assert record_events(engine, [success], clock()) == [Outcome.PROCESSED]
    assert one_statements(sent) == 1
    with sessions() as session:
        case = session.scalars(select(RecoveryCase)).one()
        email = session.scalars(select(Notification)).one()
    assert case.status == "recovered"
    assert email.status == "canceled"


def test_a_batch_waits_for_a_writer_holding_its_locks_before_its_statement_reads(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    """The locks come first, in a statement of their own: the batch's statement then reads
    what the holder committed (here: the failure's case, which the success closes)."""
    answers: list[list[Outcome]] = []
    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('pi_held', 0))"))
        success = delivery("payment_intent.succeeded", "pi_held", "evt_held_succeeded")
        waiting = threading.Thread(
            target=lambda: answers.append(record_events(engine, [success], clock()))
        )
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and not answers  # it waits for the lock
        record_in(holder, [failure("pi_held", "evt_held_failed")], clock)
    waiting.join(timeout=10)
    assert answers == [[Outcome.PROCESSED]]
    with sessions() as session:
        assert session.scalars(select(RecoveryCase.status)).one() == "recovered"


def record_in(connection: Connection, deliveries: list[Delivery], clock: FakeClock) -> None:
    """Apply `deliveries` in the caller's transaction, as a batch in a transaction does."""
    assert store_module.apply_events(connection, deliveries, now=clock()) == [
        Outcome.PROCESSED
    ] * len(deliveries)


def test_a_statement_that_loses_a_lock_race_is_written_in_a_transaction(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock race is not the database being unavailable: the transaction, which runs a
    batch that lost one again, writes it."""
    def losing(connection: Connection, *_args: Any, **_kwargs: Any) -> list[Outcome] | None:
        connection.exec_driver_sql(RAISE_DEADLOCK)
        return None

    monkeypatch.setattr(store_module, "apply_in_one_statement", losing)
    assert record_events(engine, [failure("pi_race", "evt_race")], clock()) == [
        Outcome.PROCESSED
    ]
    with sessions() as session:
        assert session.scalars(select(RecoveryCase.payment_intent_id)).one() == "pi_race"


def batch_connections_and_their_locks(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        connections, locks = connection.execute(text(
            "SELECT count(DISTINCT a.pid), count(l.pid) FROM pg_stat_activity AS a"
            " LEFT JOIN pg_locks AS l ON l.pid = a.pid AND l.locktype = 'advisory'"
            " WHERE a.application_name = :name AND a.datname = current_database()"
        ), {"name": APPLICATION_NAME}).one()
        return int(connections), int(locks)


def test_a_drain_that_ends_lets_its_locks_go_and_keeps_its_connection(
    engine: Engine, clock: FakeClock
) -> None:
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)

    async def scenario() -> tuple[list[Outcome], list[tuple[int, int]]]:
        outcomes = [await batcher.submit(failure("pi_drain", "evt_drain"))]
        seen = []
        for _ in range(50):  # the drain lets go after answering
            seen.append(await asyncio.to_thread(batch_connections_and_their_locks, engine))
            if seen[-1][1] == 0:
                break
            await asyncio.sleep(0.05)
        return outcomes, seen

    async def then_close() -> tuple[list[Outcome], list[tuple[int, int]]]:
        try:
            return await scenario()
        finally:
            await batcher.aclose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        outcomes, seen = pool.submit(asyncio.run, then_close()).result(timeout=60)
    assert outcomes == [Outcome.PROCESSED]
    assert seen[-1] == (1, 0)  # let go, the connection parked for the next drain


def advisory_locks_held(connection: Connection) -> int:
    return int(connection.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    )).scalar_one())


def test_session_locks_let_the_last_ones_go_before_taking_the_next(engine: Engine) -> None:
    locks = SessionLocks()
    with engine.connect() as connection:
        connection.execution_options(isolation_level=AUTOCOMMIT)
        locks.take(connection, ["pi_a", "pi_b"])
        assert advisory_locks_held(connection) == 2
        locks.take(connection, ["pi_b", "pi_c"])  # pi_b again: held once, not released
        assert advisory_locks_held(connection) == 2
        with engine.connect() as other:
            assert other.execute(text(
                "SELECT pg_try_advisory_lock(hashtextextended('pi_a', 0)),"
                " pg_try_advisory_lock(hashtextextended('pi_b', 0))"
            )).one() == (True, False)
            other.execute(text("SELECT pg_advisory_unlock_all()"))
        locks.release(connection)
        assert advisory_locks_held(connection) == 0
