"""The writer thread: batches share a transaction, each delivery gets its own answer."""

from __future__ import annotations

from concurrent.futures import wait
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from processor.clock import utc_now
from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.models import StripeEvent
from processor.errors import SignatureInvalid
from processor.webhooks.store import Outcome
from processor.webhooks.writer import WebhookWriter
from tests.unit.webhooks.factories import body_of, payment_intent, signature, stripe_event

SECRET = "whsec_writer_test"


def test_sqlite_connections_of_the_writer_sync_every_commit(tmp_path: Path) -> None:
    # A 2xx promises the event survives a power loss: the WAL must be synced at each commit.
    engine = make_engine(f"sqlite:///{tmp_path / 'durable.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_a_burst_is_stored_and_each_delivery_answered(engine: Engine) -> None:
    writer = WebhookWriter(engine, (SECRET,), 300, utc_now)
    try:
        bodies = [
            body_of(stripe_event("payment_intent.succeeded", payment_intent(f"pi_w{n}")))
            for n in range(40)
        ]
        futures = [writer.submit(body.encode(), signature(body, SECRET)) for body in bodies]
        futures.append(writer.submit(bodies[0].encode(), signature(bodies[0], SECRET)))
        refused = writer.submit(bodies[1].encode(), "t=1,v1=00")
        wait([*futures, refused], timeout=30)
    finally:
        writer.close()
    outcomes = [future.result().outcome for future in futures]
    assert outcomes.count(Outcome.PROCESSED) == 40
    assert outcomes[-1] is Outcome.DUPLICATE
    with pytest.raises(SignatureInvalid):
        refused.result()
    with engine.connect() as connection:
        rows = connection.execute(select(StripeEvent.id, StripeEvent.delivery_count)).all()
    assert len(rows) == 40 and sum(count for _id, count in rows) == 41


def test_a_writer_whose_database_is_gone_answers_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'missing.db'}")
    writer = WebhookWriter(engine, (SECRET,), 300, utc_now)
    try:
        body = body_of(stripe_event("payment_intent.succeeded", payment_intent("pi_gone")))
        receipt = writer.submit(body.encode(), signature(body, SECRET)).result(timeout=30)
    finally:
        writer.close()
        engine.dispose()
    assert receipt.outcome is Outcome.UNAVAILABLE


def test_two_writers_on_one_sqlite_file_store_an_event_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    first, second = make_engine(url), make_engine(url)
    upgrade_to_head(first)
    writers = [WebhookWriter(e, (SECRET,), 300, utc_now) for e in (first, second)]
    try:
        body = body_of(stripe_event("payment_intent.succeeded", payment_intent("pi_two")))
        futures = [w.submit(body.encode(), signature(body, SECRET)) for w in writers]
        outcomes = sorted(f.result(timeout=30).outcome.value for f in futures)
    finally:
        for writer in writers:
            writer.close()
        first.dispose()
        second.dispose()
    assert outcomes == ["duplicate", "processed"]
