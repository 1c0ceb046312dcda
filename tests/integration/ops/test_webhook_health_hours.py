"""`ops_webhook_health` over `webhook_health_hours`: summarizing closed hours changes none of
the view's rows, keeps `failed` current, leaves the current and previous hour live, is
idempotent under concurrent readers, and lets the day's query read an index range only."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import make_engine, make_session_factory
from processor.db.migrate import upgrade_to_head
from processor.db.models import StripeEvent, WebhookHealthHour
from processor.ops.report import read_report
from processor.ops.webhook_health import summarize_closed_hours
from processor.ops.windows import utc_hour
from tests.integration.ops.test_ops_windows import reads_index

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
TYPES = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.succeeded")


def _event(n: int, received_at: datetime, **overrides: Any) -> StripeEvent:
    event_type = TYPES[n % len(TYPES)]
    values: dict[str, Any] = {
        "id": f"evt_{n}",
        "type": event_type,
        "stripe_created_at": received_at - timedelta(seconds=n % 7 + (90 if n % 11 == 0 else 0)),
        "received_at": received_at,
        "last_received_at": received_at,
        "status": "ignored" if event_type == "charge.succeeded" else "processed",
        "delivery_count": 2 if n % 5 == 0 else 1,
        "attempt_count": 1,
        "source": "reconcile" if n % 13 == 0 else "webhook",
        "payload": "{}",
    }
    values.update(overrides)
    return StripeEvent(**values)


def _fill(sessions: sessionmaker[Session], hours: int = 6, per_hour: int = 20) -> None:
    """Events over the last `hours` hours before NOW (the current one included), a few failed."""
    with sessions.begin() as session:
        for n in range(hours * per_hour):
            received = NOW - timedelta(hours=n // per_hour, minutes=n % 29)
            failed = {"status": "failed", "error": "boom"} if n % 17 == 0 else {}
            session.add(_event(n, received, **failed))


def _view(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM ops_webhook_health ORDER BY hour, type"))
        return [tuple(_plain(value) for value in row) for row in rows]


def _plain(value: Any) -> Any:
    """Numbers compared as floats: a numeric read back from the summary and one computed may
    differ in scale (1.50 and 1.5), not in value."""
    return float(value) if isinstance(value, Decimal | float) else value


def _summarized_hours(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        hours = session.scalars(select(WebhookHealthHour.hour).distinct())
        return sorted(str(hour) for hour in hours)


def _fill_and_summarize(sessions: sessionmaker[Session]) -> None:
    """The filled hours, with every closed one summarized as `/ops` would at NOW."""
    _fill(sessions)
    with sessions.begin() as session:
        summarize_closed_hours(session, now=NOW)


def test_summarizing_changes_none_of_the_views_rows(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _fill(sessions)
    live = _view(engine)
    with sessions.begin() as session:
        written = summarize_closed_hours(session, now=NOW)
    assert written == 4 * len(TYPES)  # hours 04:00 to 07:00; 08:00 and 09:00 stay live
    assert _view(engine) == live
    assert _summarized_hours(sessions) == [f"2026-11-30 0{h}:00:00" for h in range(4, 8)]


def test_the_current_and_the_previous_hour_stay_live(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _fill_and_summarize(sessions)
    previous_hour = ("2026-11-30 08:00:00", TYPES[999 % len(TYPES)])

    def received() -> int:
        return {(str(row[0]), row[1]): row[2] for row in _view(engine)}[previous_hour]

    before = received()
    with sessions.begin() as session:  # a late first delivery of the previous hour
        session.add(_event(999, NOW - timedelta(minutes=40)))
    assert received() == before + 1


def test_summarizing_again_writes_only_newly_closed_hours(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _fill_and_summarize(sessions)
    with sessions.begin() as session:
        assert summarize_closed_hours(session, now=NOW) == 0
    with sessions.begin() as session:
        session.add(_event(1000, NOW + timedelta(hours=1)))
    live_before = _view(engine)
    with sessions.begin() as session:
        # 08:00 and 09:00 have closed; 10:00 (the new event's) is now the previous hour.
        assert summarize_closed_hours(session, now=NOW + timedelta(hours=2)) == 2 * len(TYPES)
    assert _view(engine) == live_before
    assert _summarized_hours(sessions)[-1] == "2026-11-30 09:00:00"


def test_failed_stays_current_in_a_summarized_hour(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A failed event replayed (or redelivered) successfully after its hour was summarized
    leaves `failed` and joins `processed`, as in the events themselves."""
    _fill_and_summarize(sessions)
    hour = utc_hour(engine.dialect.name, NOW - timedelta(hours=5))

    def failed_and_processed() -> tuple[int, int]:
        with engine.connect() as connection:
            return tuple(connection.execute(  # type: ignore[return-value]
                text("SELECT SUM(failed), SUM(processed) FROM ops_webhook_health"
                     " WHERE hour = :hour"), {"hour": hour}
            ).one())

    failed, processed = failed_and_processed()
    assert failed > 0
    with sessions.begin() as session:
        session.execute(
            update(StripeEvent).where(StripeEvent.status == "failed")
            .values(status="processed", error=None)
        )
    assert failed_and_processed() == (0, processed + failed)


def test_a_late_duplicate_of_a_summarized_hour_is_not_counted(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """What docs/database.md says of `duplicates` in a closed hour."""
    _fill_and_summarize(sessions)
    before = sum(row[3] for row in _view(engine))
    with sessions.begin() as session:
        session.execute(
            update(StripeEvent).values(delivery_count=StripeEvent.delivery_count + 1)
        )
    live_hours = sum(1 for n in range(6 * 20) if n // 20 < 2)  # 08:00 and 09:00
    assert sum(row[3] for row in _view(engine)) == before + live_hours


def test_the_report_summarizes_before_it_reads(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _fill(sessions)
    report = read_report(sessions, now=NOW)
    assert len(_summarized_hours(sessions)) == 4
    assert {str(row["hour"]) for row in report.webhook_health} == {
        f"2026-11-30 0{h}:00:00" for h in range(4, 10)
    }
    assert sum(row["received"] for row in report.webhook_health) == 6 * 20


def test_readers_summarizing_at_once_write_each_row_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    _fill(sessions)
    first = sessions()
    first.begin()
    assert summarize_closed_hours(first, now=NOW) == 4 * len(TYPES)
    outcome: list[int | BaseException] = []

    def second_reader() -> None:
        try:
            with sessions.begin() as session:  # waits on the first reader's rows
                outcome.append(summarize_closed_hours(session, now=NOW))
        except BaseException as error:  # reported below
            outcome.append(error)

    thread = threading.Thread(target=second_reader)
    thread.start()
    thread.join(0.5)
    first.commit()
    first.close()
    thread.join(10)
    assert outcome == [0]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookHealthHour)) == 12


def test_the_days_health_reads_index_ranges_only(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    _fill_and_summarize(sessions)
    since = utc_hour("postgresql", NOW - timedelta(hours=24))
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in connection.execute(
                text("EXPLAIN SELECT * FROM ops_webhook_health WHERE hour >= :since"),
                {"since": since},
            )
        )
        connection.rollback()
    assert "Seq Scan" not in plan, plan
    # The summary's range, the hours after it along the hour index, the failed events' index.
    assert "pk_webhook_health_hours" in plan and "Index Cond: (hour >=" in plan, plan
    assert reads_index(plan, "ix_stripe_events_received_hour_type"), plan
    assert reads_index(plan, "ix_stripe_events_failed_last_received_at"), plan


def test_processor_prune_summarizes_the_closed_hours(tmp_path: Any) -> None:
    """The daily `processor prune` keeps the summary current even where nobody opens /ops."""
    url = f"sqlite:///{tmp_path / 'pruned.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    with make_session_factory(engine).begin() as session:
        session.add(_event(1, three_hours_ago))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL"))}
    answer = subprocess.run(
        [sys.executable, "-m", "processor", "prune", "--older-than", "30d"],
        capture_output=True, text=True, env={**env, "DATABASE_URL": url}, timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert "summarized 1 (hour, type) rows of webhook health" in answer.stdout
    with engine.connect() as connection:
        summarized = connection.execute(select(WebhookHealthHour.type, WebhookHealthHour.received))
        assert [tuple(row) for row in summarized] == [(TYPES[1], 1)]
    engine.dispose()
