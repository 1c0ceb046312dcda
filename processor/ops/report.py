"""What the ops page shows, read from the documented views and tables (never from Stripe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from processor.db.models import StripeEvent
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


@dataclass(frozen=True)
class OpsReport:
    funnel: list[dict[str, Any]]
    webhook_health: list[dict[str, Any]]
    notification_queue: list[dict[str, Any]]
    failed_events: list[dict[str, Any]]
    # Recovered money per currency, split by who won it back: a retry or the customer.
    recovered_by: list[dict[str, Any]] = field(default_factory=list)


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
    queue = _rows(session, "SELECT * FROM ops_notification_queue ORDER BY status, kind")
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


def utc_hour(dialect: str, moment: datetime) -> Any:
    """`moment`'s UTC hour as the views' `hour` holds it. PostgreSQL's is a timestamp without
    zone: comparing it with a timestamptz would convert every row and miss the index."""
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return hour.isoformat(sep=" ") if dialect == "sqlite" else hour


def utc_day(dialect: str, moment: datetime) -> Any:
    """`moment`'s UTC date as the views' `day` holds it (ISO text on SQLite)."""
    day = moment.astimezone(UTC).date()
    return day.isoformat() if dialect == "sqlite" else day


def utc_midnight(dialect: str, moment: datetime) -> Any:
    """The start of `moment`'s UTC day, as `opened_at` and the like hold times on each database:
    `opened_at >= utc_midnight(…)` is `day >= utc_day(…)` read along an index on the time."""
    midnight = datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    return midnight.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else midnight


def _rows(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = session.execute(text(sql), params)
    return [dict(row._mapping) for row in result]
