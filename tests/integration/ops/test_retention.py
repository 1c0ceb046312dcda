"""`prune` deletes settled events created before the cutoff week, whole weeks at a time on
PostgreSQL and in small transactions otherwise, and keeps failed events whatever their age."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import StripeEvent
from processor.db.partitions import (
    DEFAULT_PARTITION,
    Week,
    add_week,
    add_weeks_ahead,
    weekly_partitions,
)
from processor.ops import retention
from processor.ops.retention import prune_events


def _event(event_id: str, status: str, created: datetime) -> StripeEvent:
    return StripeEvent(
        id=event_id, type="payment_intent.succeeded", stripe_created_at=created,
        received_at=created, last_received_at=created, status=status,
        delivery_count=1, attempt_count=1, source="webhook", payload="{}",
    )


def _stored(sessions: sessionmaker[Session]) -> set[str]:
    with unit_of_work(sessions) as session:
        return set(session.scalars(select(StripeEvent.id)))


def _postgresql_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no partitions")


def _week_60_days_back(engine: Engine, now: datetime) -> Week:
    """A weekly partition past a 30-day retention (the migration made none that old)."""
    week = Week.containing(now - timedelta(days=60))
    with engine.begin() as connection:
        add_week(connection, week)
    return week


def test_prune_deletes_settled_events_before_the_cutoff_week_and_keeps_failed_ones(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    now = clock()  # a Monday noon: 90 days back is Tuesday 2026-09-01, in the week of 08-31
    with unit_of_work(sessions) as session:
        session.add_all([
            _event("evt_old", "processed", now - timedelta(days=100)),
            _event("evt_old_ignored", "ignored", now - timedelta(days=95)),
            _event("evt_old_failed", "failed", now - timedelta(days=100)),
            _event("evt_old_received", "received", now - timedelta(days=100)),
            # Older than 90 days, but in the cutoff's week: kept with the rest of its week.
            _event("evt_cutoff_week", "processed", now - timedelta(days=90, hours=13)),
            _event("evt_new", "processed", now - timedelta(days=1)),
        ])
    outcome = prune_events(engine, older_than=timedelta(days=90), now=now)
    assert outcome.cutoff == datetime(2026, 8, 31, tzinfo=UTC)
    assert outcome.deleted == 2
    assert _stored(sessions) == {
        "evt_old_failed", "evt_old_received", "evt_cutoff_week", "evt_new",
    }
    with unit_of_work(sessions) as session:
        failed = session.scalars(select(StripeEvent).where(StripeEvent.id == "evt_old_failed"))
        assert failed.one().payload == "{}"


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
        outcome = prune_events(engine, older_than=timedelta(days=30), now=now, batch_size=3)
    finally:
        event.remove(engine, "commit", listener)
    assert outcome.deleted == 9
    assert outcome.transactions >= 4 and len(commits) >= 4
    assert _stored(sessions) == {f"evt_failed_{n}" for n in range(3)}
    # A second run finds nothing left to do.
    assert prune_events(engine, older_than=timedelta(days=30), now=now).deleted == 0


def test_prune_rests_in_proportion_to_each_transaction(
    engine: Engine, sessions: sessionmaker[Session], clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        session.add_all(
            _event(f"evt_{n}", "processed", now - timedelta(days=400, hours=n)) for n in range(4)
        )
    rests: list[float] = []
    ticks = iter(range(1000))
    # Every transaction "takes" 0.3 s of the clock prune reads; rests are recorded, not slept.
    monkeypatch.setattr(retention.time, "perf_counter", lambda: next(ticks) * 0.3)
    monkeypatch.setattr(retention.time, "sleep", rests.append)
    outcome = retention.prune_events(
        engine, older_than=timedelta(days=30), now=now, batch_size=2,
        pause=timedelta(milliseconds=50), rest_per_work=4.0,
    )
    assert outcome.deleted == 4 and outcome.transactions == 3
    # None before the first; then four times the last one's 0.3 s, above the 50 ms floor.
    assert rests == [0.0, pytest.approx(1.2), pytest.approx(1.2)]


def test_a_week_past_retention_is_dropped_whole_and_its_failed_events_kept(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    _postgresql_only(engine)
    now = clock()
    week = _week_60_days_back(engine, now)
    with unit_of_work(sessions) as session:
        session.add_all(
            _event(f"evt_{n}", "processed", week.start + timedelta(days=n)) for n in range(5)
        )
        session.add(_event("evt_failed", "failed", week.start + timedelta(days=2)))
    outcome = prune_events(engine, older_than=timedelta(days=30), now=now)
    assert (outcome.deleted, outcome.weeks_dropped) == (5, 1)
    assert _stored(sessions) == {"evt_failed"}
    with engine.connect() as connection:
        assert week not in weekly_partitions(connection)
        assert connection.scalar(text(f"SELECT to_regclass('{week.name}')")) is None
        home = connection.scalar(text("SELECT tableoid::regclass::text FROM stripe_events"))
    assert home == DEFAULT_PARTITION


def test_a_week_the_receiver_keeps_busy_is_left_for_the_next_run(
    engine: Engine, sessions: sessionmaker[Session], clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _postgresql_only(engine)
    now = clock()
    week = _week_60_days_back(engine, now)
    with unit_of_work(sessions) as session:
        session.add(_event("evt_old", "processed", week.start))
    monkeypatch.setattr(retention, "DROP_ATTEMPTS", 2)
    monkeypatch.setattr(retention.time, "sleep", lambda _seconds: None)
    with engine.connect() as reader:
        reader.execute(select(StripeEvent.id)).all()  # holds its lock until the rollback
        outcome = prune_events(engine, older_than=timedelta(days=30), now=now)
        reader.rollback()
    # Not dropped, and not deleted row by row either: the next run drops it.
    assert (outcome.weeks_dropped, outcome.deleted) == (0, 0)
    assert _stored(sessions) == {"evt_old"}
    with engine.connect() as connection:
        assert week in weekly_partitions(connection)
    assert prune_events(engine, older_than=timedelta(days=30), now=now).weeks_dropped == 1
    assert _stored(sessions) == set()


def test_the_command_refuses_a_retention_shorter_than_stripes_own(
    engine: Engine, sessions: sessionmaker[Session], database_url: str
) -> None:
    created = datetime.now(UTC) - timedelta(days=20)
    with unit_of_work(sessions) as session:
        session.add(_event("evt_twenty_days", "processed", created))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL"))}
    answer = subprocess.run(
        [sys.executable, "-m", "processor", "prune", "--older-than", "7d"],
        capture_output=True, text=True, timeout=60,
        env={**env, "DATABASE_URL": database_url, "SANDBOX": "1"},
        check=False,
    )
    assert answer.returncode == 2
    assert "--older-than must be at least 30d" in answer.stderr
    assert _stored(sessions) == {"evt_twenty_days"}


def test_a_week_added_late_takes_its_events_from_the_default_partition(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    _postgresql_only(engine)
    later = clock() + timedelta(weeks=30)  # no partition yet: the default one takes it
    with unit_of_work(sessions) as session:
        session.add(_event("evt_early_bird", "processed", later))
    added = add_weeks_ahead(engine, now=later, weeks_ahead=0)
    assert added == [Week.containing(later)]
    with engine.connect() as connection:
        home = connection.scalar(text("SELECT tableoid::regclass::text FROM stripe_events"))
    assert home == Week.containing(later).name
    # The key still meets the row where it now lives.
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        session.add(_event("evt_early_bird", "processed", later))
