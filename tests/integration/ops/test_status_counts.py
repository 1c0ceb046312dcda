"""`status_counts`: the triggers keep the rows per status of the outbox, the charges and the
retries exact through inserts, status changes, deletes and rollbacks, on both databases;
`/metrics` and `ops_notification_queue` read them and agree with counting the tables."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from processor.app import create_app
from processor.db.models import (
    Charge,
    ChargeRetry,
    Notification,
    RecoveryCase,
    StatusCount,
    table_of,
)
from processor.ops import report
from processor.ops.counts import compact, status_counts
from processor.ops.report import build_report
from processor.runtime import build_runtime

TOKEN = "m" * 32
COUNTED = {"notifications": Notification, "charges": Charge, "retries": ChargeRetry}


def _case(session: Session, index: int, now: datetime) -> RecoveryCase:
    case = RecoveryCase(
        payment_intent_id=f"pi_{index}",
        kind="payment_method_required",
        status="open",
        amount=1000,
        currency="usd",
        opened_at=now,
        last_failure_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    return case


def _notification(
    case: RecoveryCase, n: int, kind: str, status: str, due: datetime
) -> Notification:
    return Notification(
        case_id=case.id,
        kind=kind,
        sequence=n,
        dedup_key=f"{case.id}:{kind}:{n}",
        status=status,
        attempts=n,
        next_attempt_at=due,
        created_at=due,
        updated_at=due,
    )


def _charge(n: int, status: str, now: datetime) -> Charge:
    return Charge(
        reference=f"r{n}",
        idempotency_key=f"charge:r{n}",
        customer_id="cus_1",
        amount=500,
        currency="usd",
        status=status,
        attempt_count=1,
        created_at=now,
        updated_at=now,
    )


def _retry(case: RecoveryCase, attempt: int, status: str, now: datetime) -> ChargeRetry:
    return ChargeRetry(
        case_id=case.id,
        charge_reference="r1",
        payment_intent_id=case.payment_intent_id,
        attempt=attempt,
        idempotency_key=f"k{case.id}:{attempt}",
        status=status,
        due_at=now,
        created_at=now,
        updated_at=now,
    )


def _counted_from_the_tables(session: Session) -> dict[str, dict[str, int]]:
    counted = {}
    for name, model in COUNTED.items():
        rows = session.execute(select(model.status, func.count()).group_by(model.status))
        counted[name] = {status: n for status, n in rows}
    return counted


def _nonzero(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {name: {s: n for s, n in by.items() if n} for name, by in counts.items()}


def _fill(sessions: sessionmaker[Session], now: datetime) -> None:
    with sessions.begin() as session:
        first, second = _case(session, 1, now), _case(session, 2, now)
        session.add_all(
            [
                _notification(first, n, "initial", "pending", now - timedelta(minutes=n))
                for n in range(3)
            ]
            + [_notification(second, n, "reminder", "sent", now) for n in range(2)]
            + [_charge(n, "pending", now) for n in range(4)]
            + [_retry(first, 1, "scheduled", now), _retry(second, 1, "scheduled", now)]
        )


def test_counts_follow_inserts_status_changes_and_deletes(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    now = clock()
    _fill(sessions, now)
    with sessions.begin() as session:
        # One row at a time (the ORM), several at once (Core), and a change that is no change.
        charge = session.scalars(select(Charge).where(Charge.reference == "r0")).one()
        charge.status = "succeeded"
        session.execute(
            update(Charge).where(Charge.reference.in_(["r1", "r2"])).values(status="failed")
        )
        session.execute(update(Charge).where(Charge.reference == "r3").values(status="pending"))
        session.execute(
            update(Notification).where(Notification.sequence == 0).values(status="sending")
        )
        session.execute(update(ChargeRetry).values(status="running"))
    with sessions.begin() as session:
        session.execute(
            update(ChargeRetry).where(ChargeRetry.attempt == 1).values(status="succeeded")
        )
        session.delete(session.scalars(select(Charge).where(Charge.reference == "r3")).one())
        # Deleting a case cascades to its notifications and retries.
        session.delete(
            session.scalars(
                select(RecoveryCase).where(RecoveryCase.payment_intent_id == "pi_2")
            ).one()
        )
    with sessions() as session:
        counts = status_counts(session)
        assert _nonzero(counts) == _counted_from_the_tables(session)
    assert _nonzero(counts) == {
        "notifications": {"sending": 1, "pending": 2},
        "charges": {"succeeded": 1, "failed": 2},
        "retries": {"succeeded": 1},
    }
    # Every known status is exposed, so that a series drops to 0 instead of vanishing.
    assert counts["charges"]["pending"] == 0 and counts["notifications"]["dead"] == 0


def test_a_rolled_back_change_counts_nothing(sessions: sessionmaker[Session], clock: Any) -> None:
    _fill(sessions, clock())
    with sessions() as session:
        session.execute(update(Charge).values(status="error"))
        session.add(_charge(9, "pending", clock()))
        session.flush()
        session.rollback()
    with sessions() as session:
        assert _nonzero(status_counts(session))["charges"] == {"pending": 4}


def test_compact_folds_the_rows_and_keeps_the_sums(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    _fill(sessions, clock())
    with sessions.begin() as session:
        session.execute(update(Charge).values(status="succeeded"))
        session.execute(update(Charge).values(status="failed"))
    counts_table = table_of(StatusCount)
    with sessions.begin() as session:
        before = status_counts(session)
        rows = session.scalar(select(func.count()).select_from(counts_table))
        assert compact(session, above=rows) == 0  # not more than the threshold: left alone
        assert compact(session, above=0) == rows
    with sessions() as session:
        assert status_counts(session) == before
        kept = session.execute(select(counts_table.c.table_name, counts_table.c.status)).all()
    # One row per (table, status, kind), zeros included: a status once seen stays at 0.
    assert sorted(kept) == [
        ("charge_retries", "scheduled"),
        ("charges", "failed"),
        ("charges", "pending"),
        ("charges", "succeeded"),
        ("notifications", "pending"),
        ("notifications", "sent"),
    ]


def test_metrics_expose_the_counts_after_status_changes(
    make_settings: Any, engine: Engine, sessions: sessionmaker[Session], clock: Any
) -> None:
    _fill(sessions, clock())
    runtime = build_runtime(make_settings(metrics_token=TOKEN), engine=engine)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(runtime)) as client:
        before = client.get("/metrics", headers=headers).text
        with sessions.begin() as session:
            session.execute(
                update(Charge).where(Charge.reference == "r0").values(status="succeeded")
            )
            session.execute(
                update(Notification).where(Notification.status == "pending").values(status="sent")
            )
        after = client.get("/metrics", headers=headers).text
    assert 'processor_charges{status="pending"} 4.0' in before
    assert 'processor_charges{status="pending"} 3.0' in after
    assert 'processor_charges{status="succeeded"} 1.0' in after
    assert 'processor_notification_queue_depth{status="pending"} 0.0' in after
    assert 'processor_notification_queue_depth{status="sent"} 5.0' in after
    assert 'processor_charge_retries{status="scheduled"} 2.0' in after


OLD_QUEUE = """
    SELECT status, kind, COUNT(*) AS notifications, MIN(next_attempt_at) AS oldest,
           MAX(attempts) AS max_attempts,
           SUM(CASE WHEN status = 'pending' AND next_attempt_at <= {now} THEN 1 ELSE 0 END)
    FROM notifications GROUP BY status, kind ORDER BY status, kind
"""


def test_the_queue_view_agrees_with_counting_the_table(
    engine: Engine, sessions: sessionmaker[Session], clock: Any
) -> None:
    now = clock()
    _fill(sessions, now)
    with sessions.begin() as session:
        case = _case(session, 3, now)
        later = datetime.now(now.tzinfo) + timedelta(hours=1)  # the view compares with now()
        session.add_all([_notification(case, n, "initial", "pending", later) for n in range(5, 7)])
    current = "now()" if engine.dialect.name == "postgresql" else "CURRENT_TIMESTAMP"
    with engine.connect() as connection:
        view = connection.execute(
            text(
                "SELECT status, kind, notifications, oldest_next_attempt_at, max_attempts,"
                " due_now FROM ops_notification_queue ORDER BY status, kind"
            )
        ).all()
        counted = connection.execute(text(OLD_QUEUE.format(now=current))).all()
    assert [tuple(row) for row in view] == [tuple(row) for row in counted]
    assert [(row.status, row.due_now) for row in view] == [("pending", 3), ("sent", 0)]


def _plan(engine: Engine, sql: str) -> str:
    postgresql = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if postgresql:
            connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
        rows = connection.execute(text(f"{explain} {sql}")).all()
        connection.rollback()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_the_queue_view_never_scans_the_outbox(engine: Engine) -> None:
    plan = _plan(engine, "SELECT * FROM ops_notification_queue")
    assert "Seq Scan on notifications" not in plan, plan  # PostgreSQL
    assert "SCAN n\n" not in plan + "\n" and "SCAN notifications" not in plan, plan  # SQLite


def test_writers_of_different_rows_never_wait_on_a_shared_count(
    engine: Engine, sessions: sessionmaker[Session], clock: Any
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time anyway")
    _fill(sessions, clock())
    with engine.connect() as holder:
        holder.execute(text("UPDATE charges SET status = 'succeeded' WHERE reference = 'r0'"))
        errors: list[BaseException] = []

        def other_writer() -> None:
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                    connection.execute(
                        text("UPDATE charges SET status = 'succeeded' WHERE reference = 'r1'")
                    )
            except BaseException as error:  # reported below
                errors.append(error)

        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(10)
        holder.commit()
    assert errors == []
    with sessions() as session:
        assert _nonzero(status_counts(session))["charges"] == {"pending": 2, "succeeded": 2}


def test_the_report_counts_due_rows_up_to_its_bound(
    sessions: sessionmaker[Session], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/ops` shows "N+" past DUE_NOW_COUNTED_UP_TO: it counts one row more, never the backlog."""
    now = clock()
    with sessions.begin() as session:
        case = _case(session, 7, now)
        due, later = now - timedelta(minutes=1), now + timedelta(hours=1)
        session.add_all([_notification(case, n, "initial", "pending", due) for n in range(4)])
        session.add_all([_notification(case, n, "initial", "pending", later) for n in (4, 5)])

    def queue() -> list[tuple[str, str, int, int]]:
        with sessions() as session:
            rows = build_report(session, now=now).notification_queue
        return [(r["status"], r["kind"], r["notifications"], r["due_now"]) for r in rows]

    assert queue() == [("pending", "initial", 6, 4)]
    monkeypatch.setattr(report, "DUE_NOW_COUNTED_UP_TO", 2)
    assert queue() == [("pending", "initial", 6, 3)]
