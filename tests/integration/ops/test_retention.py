"""`prune` drops old settled payloads in small transactions and keeps the rows and failed
payloads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import StripeEvent
from processor.ops import retention
from processor.ops.retention import prune_event_payloads


def _event(event_id: str, status: str, received_at: datetime) -> StripeEvent:
    return StripeEvent(
        id=event_id, type="payment_intent.succeeded", stripe_created_at=received_at,
        received_at=received_at, last_received_at=received_at, status=status,
        delivery_count=1, attempt_count=1, source="webhook", payload="{}",
    )


def _payloads(sessions: sessionmaker[Session]) -> dict[str, StripeEvent]:
    with unit_of_work(sessions) as session:
        return {e.id: e for e in session.scalars(select(StripeEvent))}


def test_prune_keeps_rows_recent_payloads_and_failed_payloads(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        session.add_all([
            _event("evt_old", "processed", now - timedelta(days=100)),
            _event("evt_old_failed", "failed", now - timedelta(days=100)),
            _event("evt_new", "processed", now - timedelta(days=1)),
        ])
    outcome = prune_event_payloads(engine, older_than=timedelta(days=90), now=now)
    assert outcome.pruned == 1
    rows = _payloads(sessions)
    assert set(rows) == {"evt_old", "evt_old_failed", "evt_new"}
    assert rows["evt_old"].payload is None and rows["evt_old"].payload_pruned_at == now
    assert rows["evt_old_failed"].payload == "{}"
    assert rows["evt_new"].payload == "{}"


def test_prune_commits_batch_by_batch_past_failed_events_and_equal_times(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    old = now - timedelta(days=40)
    with unit_of_work(sessions) as session:
        session.add_all(_event(f"evt_failed_{n}", "failed", old) for n in range(3))
        # Seven at one instant and two later: batches of three must step past the ties.
        session.add_all(_event(f"evt_tie_{n}", "ignored", old) for n in range(7))
        session.add_all(
            _event(f"evt_later_{n}", "processed", old + timedelta(hours=n + 1)) for n in range(2)
        )
    commits: list[int] = []
    listener = lambda _connection: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        outcome = prune_event_payloads(
            engine, older_than=timedelta(days=30), now=now, batch_size=3
        )
    finally:
        event.remove(engine, "commit", listener)
    assert outcome.pruned == 9
    assert outcome.batches == 4 and len(commits) >= 4
    rows = _payloads(sessions)
    assert {i for i, e in rows.items() if e.payload is not None} == {
        f"evt_failed_{n}" for n in range(3)
    }
    # A second run finds nothing left to do.
    assert prune_event_payloads(engine, older_than=timedelta(days=30), now=now).pruned == 0


def test_prune_rests_in_proportion_to_each_batch(
    engine: Engine, sessions: sessionmaker[Session], clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        session.add_all(
            _event(f"evt_{n}", "processed", now - timedelta(days=40, hours=n)) for n in range(4)
        )
    rests: list[float] = []
    ticks = iter(range(1000))
    # Every batch "takes" 0.3 s of the clock prune reads; the rests are recorded, not slept.
    monkeypatch.setattr(retention.time, "perf_counter", lambda: next(ticks) * 0.3)
    monkeypatch.setattr(retention.time, "sleep", rests.append)
    outcome = retention.prune_event_payloads(
        engine, older_than=timedelta(days=30), now=now, batch_size=2,
        pause=timedelta(milliseconds=50), rest_per_work=4.0,
    )
    assert outcome.pruned == 4 and outcome.batches == 3
    # Four times the batch's 0.3 s, above the 50 ms floor; none after the last batch.
    assert rests == [pytest.approx(1.2), pytest.approx(1.2)]
