"""Ops at scale, continued. `ops_webhook_health` reads closed hours from a summary table,
`webhook_health_hours`, and computes only the newer hours from `stripe_events`.

An hour's events never change their `received_at`, `stripe_created_at`, `source` or `type`
once the hour is over, so its received count, lag statistics and reconciled count are final;
the application summarizes each hour once (one row per hour and type) when it is at least an
hour past, and the view reads those rows for every hour up to the newest summarized one. What
can still change in a closed hour is read live or documented: `failed` is counted from the
partial index of failed events (a replay or a redelivery that succeeds moves it), `processed`
is the rest; `duplicates` counts the deliveries received until the hour was summarized.

Existing hours are summarized here, up to the hour before the current one (the database's
clock): afterwards the view reads the summary whatever the table's size.

Frozen: imports nothing from the application.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMMARIZED = (
    "hour", "type", "received", "duplicates", "ignored", "avg_lag_seconds", "p50_lag_seconds",
    "p95_lag_seconds", "max_lag_seconds", "reconciled",
)

# 0001's view body per dialect: the grouping of events by hour and type into `grouped`. Its
# `{where}` picks the events: 0008's view groups only the hours newer than the summary; the
# downgrade restores 0001's view, which groups them all.
GROUPING = {
    "sqlite": """
        events AS (
            SELECT strftime('%Y-%m-%d %H:00:00', received_at) AS hour, type, status, source,
                   delivery_count,
                   CASE WHEN source = 'webhook'
                        THEN (julianday(received_at) - julianday(stripe_created_at)) * 86400 END
                       AS lag
            FROM stripe_events
            {where}
        ), ranked AS (
            SELECT *,
                   ROW_NUMBER() OVER (PARTITION BY hour, type, lag IS NULL ORDER BY lag)
                       AS lag_rank,
                   COUNT(lag) OVER (PARTITION BY hour, type) AS lag_count
            FROM events
        ), grouped AS (
            SELECT hour,
                   type,
                   COUNT(*) AS received,
                   SUM(delivery_count - 1) AS duplicates,
                   SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
                   SUM(CASE WHEN status = 'ignored' THEN 1 ELSE 0 END) AS ignored,
                   SUM(CASE WHEN status = 'processed' THEN 1 ELSE 0 END) AS processed,
                   AVG(lag) AS avg_lag_seconds,
                   MIN(CASE WHEN lag IS NOT NULL AND lag_rank >= 0.5 * lag_count THEN lag END)
                       AS p50_lag_seconds,
                   MIN(CASE WHEN lag IS NOT NULL AND lag_rank >= 0.95 * lag_count THEN lag END)
                       AS p95_lag_seconds,
                   MAX(lag) AS max_lag_seconds,
                   SUM(CASE WHEN source = 'reconcile' THEN 1 ELSE 0 END) AS reconciled
            FROM ranked
            GROUP BY hour, type
        )""",
    "postgresql": """
        events AS (
            SELECT date_trunc('hour', received_at AT TIME ZONE 'UTC') AS hour, type, status,
                   source, delivery_count,
                   CASE WHEN source = 'webhook'
                        THEN EXTRACT(EPOCH FROM received_at - stripe_created_at) END AS lag
            FROM stripe_events
            {where}
        ), grouped AS (
            SELECT hour,
                   type,
                   COUNT(*) AS received,
                   SUM(delivery_count - 1) AS duplicates,
                   COUNT(*) FILTER (WHERE status = 'failed') AS failed,
                   COUNT(*) FILTER (WHERE status = 'ignored') AS ignored,
                   COUNT(*) FILTER (WHERE status = 'processed') AS processed,
                   AVG(lag) AS avg_lag_seconds,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY lag) AS p50_lag_seconds,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY lag) AS p95_lag_seconds,
                   MAX(lag) AS max_lag_seconds,
                   COUNT(*) FILTER (WHERE source = 'reconcile') AS reconciled
            FROM events
            GROUP BY hour, type
        )""",
}
HOUR_RECEIVED = {
    "postgresql": "date_trunc('hour', received_at AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:00:00', received_at)",
}
# The live hours: those after the newest summarized one (every hour while none is).
BEFORE_EVERY_HOUR = {"postgresql": "'-infinity'", "sqlite": "''"}
NEWER_THAN_SUMMARY = {
    dialect: f"WHERE {hour} > (SELECT COALESCE(MAX(hour), {BEFORE_EVERY_HOUR[dialect]})"  # noqa: S608
    " FROM webhook_health_hours)"
    for dialect, hour in HOUR_RECEIVED.items()
}
# Failed events are few and indexed (ix_stripe_events_failed_last_received_at's predicate):
# counting them per hour keeps `failed` current in summarized hours too.
HEALTH_VIEW = """
    WITH failed_now AS (
        SELECT {hour} AS hour, type, COUNT(*) AS failed
        FROM stripe_events
        WHERE status = 'failed'
        GROUP BY 1, 2
    ), {grouping}
    SELECT s.hour,
           s.type,
           s.received,
           s.duplicates,
           COALESCE(f.failed, 0) AS failed,
           s.ignored,
           s.received - s.ignored - COALESCE(f.failed, 0) AS processed,
           s.avg_lag_seconds,
           s.p50_lag_seconds,
           s.p95_lag_seconds,
           s.max_lag_seconds,
           s.reconciled
    FROM webhook_health_hours s
    LEFT JOIN failed_now f ON f.hour = s.hour AND f.type = s.type
    UNION ALL
    SELECT hour, type, received, duplicates, failed, ignored, processed, avg_lag_seconds,
           p50_lag_seconds, p95_lag_seconds, max_lag_seconds, reconciled
    FROM grouped
"""
# Hours before this one are summarized here, as the application does: the current and the
# previous hour stay live.
SUMMARIZE_BEFORE = {
    "postgresql": "date_trunc('hour', now() AT TIME ZONE 'UTC') - interval '1 hour'",
    "sqlite": "strftime('%Y-%m-%d %H:00:00', 'now', '-1 hour')",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    lag = sa.Numeric().with_variant(sa.Float(), "sqlite")
    op.create_table(
        "webhook_health_hours",
        sa.Column("hour", sa.DateTime().with_variant(sa.String(19), "sqlite"), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("ignored", sa.BigInteger(), nullable=False),
        sa.Column("avg_lag_seconds", lag, nullable=True),
        sa.Column("p50_lag_seconds", lag, nullable=True),
        sa.Column("p95_lag_seconds", lag, nullable=True),
        sa.Column("max_lag_seconds", lag, nullable=True),
        sa.Column("reconciled", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "type", name=op.f("pk_webhook_health_hours")),
    )
    op.execute("DROP VIEW ops_webhook_health")
    live_hours = GROUPING[dialect].format(where=NEWER_THAN_SUMMARY[dialect])
    view = HEALTH_VIEW.format(hour=HOUR_RECEIVED[dialect], grouping=live_hours)
    op.execute("CREATE VIEW ops_webhook_health AS " + view)
    columns = ", ".join(SUMMARIZED)
    op.execute(
        f"INSERT INTO webhook_health_hours ({columns})"  # noqa: S608 - constants only
        f" SELECT {columns} FROM ops_webhook_health WHERE hour < {SUMMARIZE_BEFORE[dialect]}"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW ops_webhook_health")
    every_hour = GROUPING[dialect].format(where="")
    op.execute(
        f"CREATE VIEW ops_webhook_health AS WITH {every_hour}"  # noqa: S608 - constants only
        " SELECT * FROM grouped"
    )
    op.drop_table("webhook_health_hours")
