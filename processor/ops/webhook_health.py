"""Closed hours of `ops_webhook_health`, summarized once into `webhook_health_hours`.

The view (migration 0008) reads every hour up to the newest summarized one from the summary
and computes the newer hours from `stripe_events`, so it stays as fast as the summary is
recent. Readers of the day's health (`/ops`) and `processor prune` call
`summarize_closed_hours`; it writes nothing to the webhook path's tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import column, func, select, table
from sqlalchemy.orm import Session

from processor.db.models import WebhookHealthHour, table_of
from processor.db.upsert import dialect_insert
from processor.ops.windows import utc_hour

# The current and the previous hour stay live: an hour is summarized once it has been over
# for at least an hour, so that the deliveries Stripe retries within minutes (and clock skew
# between app hosts) are counted in it. Later deliveries of its events are not (see
# docs/database.md); `failed` stays current because the view counts failed events live.
LIVE_HOURS = timedelta(hours=1)
SUMMARIZED = (
    "hour", "type", "received", "duplicates", "ignored", "avg_lag_seconds", "p50_lag_seconds",
    "p95_lag_seconds", "max_lag_seconds", "reconciled",
)
SUMMARY = table_of(WebhookHealthHour)
HEALTH_VIEW = table("ops_webhook_health", *(column(name) for name in SUMMARIZED))


def summarize_closed_hours(session: Session, *, now: datetime) -> int:
    """Summarize the hours between the newest summarized one and the previous hour (excluded),
    computed by the view itself; the number of (hour, type) rows written. Idempotent: readers
    racing on the same hours insert each row once (ON CONFLICT DO NOTHING), and the summary
    grows without gaps, which the view's "newer than the newest summarized hour" relies on."""
    dialect = session.get_bind().dialect.name
    summarize_before = utc_hour(dialect, now - LIVE_HOURS)
    window = HEALTH_VIEW.c.hour < summarize_before
    newest = session.scalar(select(func.max(SUMMARY.c.hour)))
    if newest is not None:
        window = window & (HEALTH_VIEW.c.hour > newest)
    closed_hours = select(*(HEALTH_VIEW.c[name] for name in SUMMARIZED)).where(window)
    statement = (
        dialect_insert(dialect, SUMMARY).from_select(SUMMARIZED, closed_hours)
        .on_conflict_do_nothing()
        .returning(SUMMARY.c.hour)
    )
    return len(session.execute(statement).all())
