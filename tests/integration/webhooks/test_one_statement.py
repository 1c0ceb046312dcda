"""PostgreSQL: a batch of new events in one round trip, its statement run first for its locks,
then for its writes, and the batches that need a transaction instead
(processor.webhooks.one_statement)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.attempts import adoptions_write
from processor.db.engine import AUTOCOMMIT, make_async_engine
from processor.db.models import Notification, RecoveryCase, SetupAttempt, StripeEvent
from processor.webhooks import store as store_module
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.batcher import APPLICATION_NAME, WebhookBatcher
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import record_events
from tests.fixtures.database import FakeClock
from tests.fixtures.events import body_of, decline, payment_intent, setup_intent, stripe_event
from tests.integration.webhooks.test_batcher import run
from tests.integration.webhooks.test_handlers import lost_answer, with_token

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


def through_record_events(engine: Engine, clock: FakeClock, batch: list[Delivery]) -> list[Outcome]:
    """psycopg, in a transaction (replay, reconcile)."""
    return record_events(engine, batch, clock())


def through_the_batcher(engine: Engine, clock: FakeClock, batch: list[Delivery]) -> list[Outcome]:
    """asyncpg, in autocommit: the executions of one executemany are one transaction."""
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)

    async def submitted() -> list[Outcome]:
        return list(await asyncio.gather(*(batcher.submit(d) for d in batch)))

    return run(batcher, submitted())


@pytest.mark.parametrize("record", [through_record_events, through_the_batcher])
def test_a_batch_waits_for_a_writer_holding_its_locks_before_its_statement_reads(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
    record: Callable[[Engine, FakeClock, list[Delivery]], list[Outcome]],
) -> None:
    """The statement's first execution takes the locks; the second reads what the holder
    committed meanwhile (here: the failure's case, which the success closes)."""
    answers: list[list[Outcome]] = []
    with engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('pi_held', 0))"))
        success = delivery("payment_intent.succeeded", "pi_held", "evt_held_succeeded")
        waiting = threading.Thread(target=lambda: answers.append(record(engine, clock, [success])))
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


def test_a_batch_holds_no_lock_once_answered_and_its_drain_keeps_the_connection(
    engine: Engine, clock: FakeClock
) -> None:
    batcher = WebhookBatcher(engine, clock, batches_in_flight=1)

    async def scenario() -> tuple[list[Outcome], tuple[int, int]]:
        outcomes = [await batcher.submit(failure("pi_drain", "evt_drain"))]
        return outcomes, await asyncio.to_thread(batch_connections_and_their_locks, engine)

    outcomes, seen = run(batcher, scenario())
    assert outcomes == [Outcome.PROCESSED]
    assert seen == (1, 0)  # the locks went with the commit; the connection is parked


def test_a_set_up_that_adopts_a_lost_answer_runs_the_statement_three_times_at_once(
    engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    """The adoption reads the orphan rows after the token's lock (the second execution) and
    before the attempts' upsert looks for the SetupIntent's row (the third)."""
    lost_answer(sessions, clock)
    document = stripe_event(
        "setup_intent.succeeded", with_token(setup_intent("seti_adopt", payment_method="pm_a"))
    )
    executions: list[Any] = []

    def collect(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("WITH new_events AS "):
            executions.extend(parameters)

    event.listen(engine, "before_cursor_execute", collect)
    try:
        outcomes = record_events(engine, [Delivery(parse_event(body_of(document)), 0)], clock())
    finally:
        event.remove(engine, "before_cursor_execute", collect)
    assert outcomes == [Outcome.PROCESSED]
    locks, adoption, batch = executions
    assert locks["lock_keys"] == ["ctoken_1"] and locks["adoptions"] == "[]"
    assert adoption["lock_keys"] == [] and "seti_adopt" in adoption["adoptions"]
    assert batch["adoptions"] == "[]" and "seti_adopt" in batch["attempt_rows"]
    with sessions() as session:
        attempts = session.scalars(select(SetupAttempt)).all()
    assert [(a.setup_intent_id, a.status) for a in attempts] == [("seti_adopt", "succeeded")]


def test_two_adoptions_of_one_customer_and_token_take_the_transaction(clock: FakeClock) -> None:
    """Each would adopt the oldest orphan in one UPDATE; one after the other, the next."""
    shared = [("seti_1", "cus_1", "ctoken_1"), ("seti_2", "cus_1", "ctoken_1")]
    assert adoptions_write(shared, now=clock()) is None
    assert adoptions_write([shared[0], ("seti_3", "cus_1", "ctoken_3")], now=clock())


def test_the_batches_executemany_in_autocommit_is_one_transaction(engine: Engine) -> None:
    """What the path relies on (asyncpg's executemany is atomic): the executions share one
    transaction, so the locks the first takes are held by the last, and a last one that fails
    leaves nothing of the first."""
    statement = text(
        "WITH held AS (INSERT INTO seen SELECT n FROM (SELECT count(*) AS n FROM pg_locks"
        " WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks WHERE :count)"
        " SELECT count(pg_advisory_xact_lock(key)), 1 / CAST(:divisor AS int)"
        " FROM unnest(CAST(:keys AS bigint[])) AS key"
    )
    lock = {"keys": [7], "count": False, "divisor": 1}
    count = {"keys": [], "count": True, "divisor": 1}
    fail = {"keys": [], "count": False, "divisor": 0}

    async def executed() -> tuple[list[int], list[int]]:
        async_engine = make_async_engine(engine.url, application_name=APPLICATION_NAME)
        try:
            async with async_engine.connect() as connection:
                await connection.execution_options(isolation_level=AUTOCOMMIT)
                await connection.exec_driver_sql("CREATE TEMPORARY TABLE seen (n int)")
                await connection.execute(statement, [lock, count])
                counted = list((await connection.exec_driver_sql("SELECT n FROM seen")).scalars())
                with pytest.raises(DBAPIError):
                    await connection.execute(statement, [count, fail])
                await connection.rollback()
                after = list((await connection.exec_driver_sql("SELECT n FROM seen")).scalars())
                return counted, after
        finally:
            await async_engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own, whatever runs here
        seen = pool.submit(asyncio.run, executed()).result(timeout=60)
    assert seen == ([1], [1])  # the first one's lock; nothing of the failed pair
