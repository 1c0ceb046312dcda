"""What the ops page shows, read from the documented views and tables (never from Stripe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import StripeEvent
from processor.db.types import UTCDateTime
from processor.ops.webhook_health import summarize_closed_hours
from processor.ops.windows import utc_day, utc_hour, utc_midnight
from processor.recovery.money import format_money

RECENT_FAILURES = 20
HEALTH_HOURS = 24
# ops_recovered_by's SQL over the funnel's window (cases opened since the same UTC day), along
# the (status, opened_at) index: the view itself counts every recovered case ever, which /ops
# would read in full at each load.
RECOVERED_BY = """
    SELECT currency,
           CASE WHEN EXISTS (
                    SELECT 1 FROM charge_retries
                    WHERE charge_retries.case_id = recovery_cases.id
                      AND charge_retries.status = 'succeeded')
                THEN 'retry' ELSE 'customer' END AS recovered_by,
           COUNT(*) AS recovered,
           SUM(amount) AS recovered_amount
    FROM recovery_cases
    WHERE status = 'recovered' AND opened_at >= :since
    GROUP BY 1, 2
    ORDER BY 1, 2
"""
# A dashboard needs to know that the backlog is large, not by how much: `due_now` counts at
# most this many rows per kind (along the (status, kind, next_attempt_at) index), and the page
# shows "1,000+". ops_notification_queue's own `due_now` counts every due row: at a 150k
# backlog, 43 ms of the page. PostgreSQL drops the view's unread column from the plan.
DUE_NOW_COUNTED_UP_TO = 1000
NOTIFICATION_QUEUE = text("""
    SELECT q.status, q.kind, q.notifications, q.oldest_next_attempt_at, q.max_attempts,
           CASE WHEN q.status = 'pending'
                THEN (SELECT COUNT(*) FROM (
                          SELECT 1 FROM notifications n
                          WHERE n.status = 'pending' AND n.kind = q.kind
                            AND n.next_attempt_at <= :now
                          LIMIT :up_to) AS due)
                ELSE 0 END AS due_now
    FROM ops_notification_queue q
    ORDER BY q.status, q.kind
""").bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True)
class OpsReport:
    funnel: list[dict[str, Any]]
    webhook_health: list[dict[str, Any]]
    notification_queue: list[dict[str, Any]]
    failed_events: list[dict[str, Any]]
    # Recovered money per currency, split by who won it back: a retry or the customer.
    recovered_by: list[dict[str, Any]] = field(default_factory=list)


def read_report(sessions: sessionmaker[Session], *, now: datetime) -> OpsReport:
    """The report, after summarizing the webhook hours closed since the last reader did (its
    own short transaction, so that the report's read does not hold the summary's rows)."""
    with unit_of_work(sessions) as session:
        summarize_closed_hours(session, now=now)
    with unit_of_work(sessions) as session:
        return build_report(session, now=now)


def build_report(session: Session, *, now: datetime, days: int = 14) -> OpsReport:
    """The funnel and the money recovered (by retry or customer) of cases opened in the last
    `days`, webhook health of the last HEALTH_HOURS, the outbox and the latest failures: each
    read through an index over its window only."""
    dialect = session.get_bind().dialect.name
    funnel = _rows(
        session,
        "SELECT * FROM ops_recovery_funnel WHERE day >= :since_day ORDER BY day DESC, kind",
        since_day=utc_day(dialect, now - timedelta(days=days)),
    )
    health = _rows(
        session,
        "SELECT * FROM ops_webhook_health WHERE hour >= :since_hour"
        " ORDER BY hour DESC, type LIMIT 200",
        since_hour=utc_hour(dialect, now - timedelta(hours=HEALTH_HOURS)),
    )
    queue = [
        dict(row._mapping)
        for row in session.execute(
            NOTIFICATION_QUEUE, {"now": now, "up_to": DUE_NOW_COUNTED_UP_TO + 1}
        )
    ]
    failed = [
        {
            "id": row.id,
            "type": row.type,
            "received_at": row.received_at,
            "delivery_count": row.delivery_count,
            "error": row.error,
        }
        for row in session.scalars(
            select(StripeEvent)
            .where(StripeEvent.status == "failed")
            .order_by(StripeEvent.last_received_at.desc())
            .limit(RECENT_FAILURES)
        )
    ]
    recovered_by = [
        {**row, "amount_display": format_money(row["recovered_amount"] or 0, row["currency"], "en")}
        for row in _rows(
            session,
            RECOVERED_BY,
            since=utc_midnight(dialect, now - timedelta(days=days)),
        )
    ]
    return OpsReport(funnel, health, queue, failed, recovered_by)


def _rows(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = session.execute(text(sql), params)
    return [dict(row._mapping) for row in result]
