"""What the ops page shows, read from the documented views and tables (never from Stripe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from processor.db.models import Charge, ChargeRetry, Notification, StripeEvent
from processor.recovery.money import format_money

RECENT_FAILURES = 20


@dataclass(frozen=True)
class OpsReport:
    funnel: list[dict[str, Any]]
    webhook_health: list[dict[str, Any]]
    notification_queue: list[dict[str, Any]]
    failed_events: list[dict[str, Any]]
    # Recovered money per currency, split by who won it back: a retry or the customer.
    recovered_by: list[dict[str, Any]] = field(default_factory=list)


def build_report(session: Session, *, now: datetime, days: int = 14) -> OpsReport:
    """The funnel and webhook health of the last `days`, the outbox, the latest failures."""
    since_day: Any = (now - timedelta(days=days)).date()
    if session.get_bind().dialect.name == "sqlite":
        since_day = since_day.isoformat()  # the view's day is ISO text there
    funnel = _rows(
        session,
        "SELECT * FROM ops_recovery_funnel WHERE day >= :since_day ORDER BY day DESC, kind",
        since_day=since_day,
    )
    health = _rows(
        session,
        "SELECT * FROM ops_webhook_health ORDER BY hour DESC, type LIMIT 200",
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
            session, "SELECT * FROM ops_recovered_by ORDER BY currency, recovered_by"
        )
    ]
    return OpsReport(funnel, health, queue, failed, recovered_by)


def status_counts(session: Session) -> dict[str, dict[str, int]]:
    """Rows per status of the outbox and of the charges, for `/metrics` at scrape time: the
    charger and the notifier may run in other processes, whose counters are not scraped."""
    counted = (("notifications", Notification), ("charges", Charge), ("retries", ChargeRetry))
    return {
        name: dict(session.execute(select(model.status, func.count()).group_by(model.status)).all())
        for name, model in counted
    }


def _rows(session: Session, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = session.execute(text(sql), params)
    return [dict(row._mapping) for row in result]
