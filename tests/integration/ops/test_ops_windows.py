"""Dashboards read their window through an index: the report's windows, and the plans of the
documented queries and the outbox claim on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import StripeEvent
from processor.ops.report import RECOVERED_BY, build_report, utc_day, utc_hour, utc_midnight
from processor.recovery.outbox import due_notification_ids

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def _event(event_id: str, received_at: datetime, status: str = "processed") -> StripeEvent:
    return StripeEvent(
        id=event_id, type="payment_intent.succeeded", stripe_created_at=received_at,
        received_at=received_at, last_received_at=received_at, status=status,
        delivery_count=1, attempt_count=1, source="webhook", payload="{}",
    )


def test_the_report_shows_webhook_health_of_its_window_only(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        session.add(_event("evt_recent", NOW - timedelta(hours=1)))
        session.add(_event("evt_old", NOW - timedelta(hours=72), status="failed"))
    with sessions() as session:
        report = build_report(session, now=NOW)
    hours = [str(row["hour"]) for row in report.webhook_health]
    assert hours == ["2026-11-30 08:00:00"]
    assert [row["id"] for row in report.failed_events] == ["evt_old"]


def test_windows_are_utc_whatever_the_callers_zone() -> None:
    tokyo = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    assert utc_hour("sqlite", tokyo) == "2026-11-30 09:00:00"
    assert utc_hour("postgresql", tokyo) == datetime(2026, 11, 30, 9)
    assert utc_day("sqlite", tokyo) == "2026-11-30"
    assert utc_midnight("sqlite", tokyo) == "2026-11-30 00:00:00.000000"
    assert utc_midnight("postgresql", tokyo) == datetime(2026, 11, 30, tzinfo=UTC)


def _plan(engine: Engine, statement: Any, params: dict[str, Any]) -> str:
    """The query plan as text. PostgreSQL is told to avoid sequential scans, which it prefers on
    tiny test tables, so that only a query no index can serve shows a Seq Scan."""
    postgresql = engine.dialect.name == "postgresql"
    if not isinstance(statement, str):
        statement = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if postgresql:
            connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
        rows = connection.execute(text(f"{explain} {statement}"), params).all()
        connection.rollback()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


WINDOWED = {
    "ix_stripe_events_received_hour_type": (
        "SELECT * FROM ops_webhook_health WHERE hour >= :since ORDER BY hour DESC LIMIT 200",
        lambda dialect: {"since": utc_hour(dialect, NOW - timedelta(hours=24))},
    ),
    "ix_recovery_cases_opened_day": (
        "SELECT * FROM ops_recovery_funnel WHERE day >= :since",
        lambda dialect: {"since": utc_day(dialect, NOW - timedelta(days=30))},
    ),
    "ix_stripe_events_failed_last_received_at": (
        "SELECT id FROM stripe_events WHERE status = 'failed'"
        " ORDER BY last_received_at DESC LIMIT 20",
        lambda dialect: {},
    ),
}


# What PostgreSQL names an index's copy on each weekly partition of stripe_events (its
# columns' names, after the partition's).
ON_PARTITIONS = {
    "ix_stripe_events_received_hour_type": "_date_trunc_type_idx",
    "ix_stripe_events_failed_last_received_at": "_last_received_at_idx",
}


def reads_index(plan: str, index: str) -> bool:
    return index in plan or (index in ON_PARTITIONS and ON_PARTITIONS[index] in plan)


@pytest.mark.parametrize("index", sorted(WINDOWED))
def test_each_window_reads_its_index(engine: Engine, index: str) -> None:
    sql, params = WINDOWED[index]
    plan = _plan(engine, sql, params(engine.dialect.name))
    assert reads_index(plan, index), plan


def test_the_claim_walks_its_partial_index_in_order(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("one process claims on SQLite; the outbox scales out on PostgreSQL")
    plan = _plan(engine, due_notification_ids(now=NOW, limit=10), {})
    assert "Index Scan using ix_notifications_claimable" in plan, plan
    assert "Sort" not in plan, plan


def test_payloads_live_out_of_the_rows_scans_read(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TOAST is PostgreSQL's")
    event = _event("evt_big", NOW)
    # Like a Stripe object: many repeated field names, so it compresses well below the 2 KB at
    # which PostgreSQL would move it out of the row on its own.
    fields = ",".join(f'"field_{n:03d}_of_the_object": null' for n in range(90))
    event.payload = '{"data": {' + fields + "}}"
    assert len(event.payload) > 2800
    with sessions.begin() as session:
        session.add(event)
    with engine.connect() as connection:
        toast = connection.exec_driver_sql(
            "SELECT reltoastrelid::regclass::text FROM pg_class"
            " WHERE oid = (SELECT tableoid FROM stripe_events)"  # the row's weekly partition
        ).scalar_one()
        chunks = connection.exec_driver_sql(f"SELECT count(*) FROM {toast}").scalar_one()
    # The row holds an 18-byte pointer; the compressed payload is in the TOAST table.
    assert chunks >= 1


def test_the_reports_recovered_money_reads_its_window(engine: Engine) -> None:
    since = utc_midnight(engine.dialect.name, NOW - timedelta(days=14))
    plan = _plan(engine, RECOVERED_BY, {"since": since})
    assert "ix_recovery_cases_status_opened_at" in plan, plan
    assert "opened_at >" in plan or "opened_at>" in plan, plan  # a range, not every case


def test_only_the_payload_leaves_the_row(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """The columns dashboards group and filter by stay in the row: with toast_tuple_target at
    128 bytes PostgreSQL would otherwise move a 25-byte `type` or a Stripe id out of line too,
    and every scan of the health window would fetch each from TOAST."""
    if engine.dialect.name != "postgresql":
        pytest.skip("TOAST is PostgreSQL's")
    event = _event("evt_1QabcdEFGhijKLMnopQRStuv", NOW)  # Stripe-length ids
    event.type = "payment_intent.payment_failed"
    event.object_id = "pi_3QabcdEFGhijKLMnopQRStuv"
    event.api_version = "2026-10-28.endive"
    event.error = None
    event.payload = '{"data": {' + ",".join(f'"f{n}": "{n * 7919:x}"' for n in range(400)) + "}}"
    with sessions.begin() as session:
        session.add(event)
    with engine.connect() as connection:
        toast = connection.exec_driver_sql(
            "SELECT reltoastrelid::regclass::text FROM pg_class"
            " WHERE oid = (SELECT tableoid FROM stripe_events)"  # the row's weekly partition
        ).scalar_one()
        values = connection.exec_driver_sql(
            f"SELECT count(DISTINCT chunk_id) FROM {toast}"
        ).scalar_one()
    assert values == 1  # the payload, nothing else
