"""SQL for the ops views, one spelling per database (documented in docs/database.md).

Views are replaced, not altered: a migration that changes one calls `drop_ops_views` and then
creates the new text.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

VIEW_NAMES = ("ops_recovery_funnel", "ops_webhook_health", "ops_notification_queue")

_SQLITE = {
    # Percentiles are nearest-rank (the smallest value with at least p of the values at or
    # below it), computed with window functions; PostgreSQL's percentile_disc gives the same.
    "ops_recovery_funnel": """
        WITH cases AS (
            SELECT date(opened_at) AS day, kind, currency, status, amount,
                   CASE WHEN status = 'recovered'
                        THEN (julianday(resolved_at) - julianday(opened_at)) * 86400 END
                       AS seconds_to_recover
            FROM recovery_cases
        ), ranked AS (
            SELECT *,
                   ROW_NUMBER() OVER (PARTITION BY day, kind, currency,
                                      seconds_to_recover IS NULL
                                      ORDER BY seconds_to_recover) AS recover_rank,
                   COUNT(seconds_to_recover) OVER (PARTITION BY day, kind, currency)
                       AS recover_count
            FROM cases
        )
        SELECT day,
               kind,
               COUNT(*) AS opened,
               SUM(CASE WHEN status = 'recovered' THEN 1 ELSE 0 END) AS recovered,
               SUM(CASE WHEN status = 'canceled' THEN 1 ELSE 0 END) AS canceled,
               SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS still_open,
               ROUND(1.0 * SUM(CASE WHEN status = 'recovered' THEN 1 ELSE 0 END) / COUNT(*), 4)
                   AS recovery_rate,
               AVG(seconds_to_recover) AS avg_seconds_to_recover,
               SUM(CASE WHEN status = 'recovered' THEN amount ELSE 0 END) AS recovered_amount,
               currency,
               MIN(CASE WHEN seconds_to_recover IS NOT NULL
                         AND recover_rank >= 0.5 * recover_count
                        THEN seconds_to_recover END) AS p50_seconds_to_recover,
               SUM(amount) AS opened_amount
        FROM ranked
        GROUP BY day, kind, currency
    """,
    "ops_webhook_health": """
        WITH events AS (
            SELECT strftime('%Y-%m-%d %H:00:00', received_at) AS hour, type, status, source,
                   delivery_count,
                   CASE WHEN source = 'webhook'
                        THEN (julianday(received_at) - julianday(stripe_created_at)) * 86400 END
                       AS lag
            FROM stripe_events
        ), ranked AS (
            SELECT *,
                   ROW_NUMBER() OVER (PARTITION BY hour, type, lag IS NULL ORDER BY lag)
                       AS lag_rank,
                   COUNT(lag) OVER (PARTITION BY hour, type) AS lag_count
            FROM events
        )
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
    """,
    "ops_notification_queue": """
        SELECT status,
               kind,
               COUNT(*) AS notifications,
               MIN(next_attempt_at) AS oldest_next_attempt_at,
               MAX(attempts) AS max_attempts,
               SUM(CASE WHEN status = 'pending' AND next_attempt_at <= CURRENT_TIMESTAMP
                        THEN 1 ELSE 0 END) AS due_now
        FROM notifications
        GROUP BY status, kind
    """,
}

_POSTGRESQL = {
    "ops_recovery_funnel": """
        SELECT (opened_at AT TIME ZONE 'UTC')::date AS day,
               kind,
               COUNT(*) AS opened,
               COUNT(*) FILTER (WHERE status = 'recovered') AS recovered,
               COUNT(*) FILTER (WHERE status = 'canceled') AS canceled,
               COUNT(*) FILTER (WHERE status = 'open') AS still_open,
               ROUND(COUNT(*) FILTER (WHERE status = 'recovered')::numeric / COUNT(*), 4)
                   AS recovery_rate,
               AVG(EXTRACT(EPOCH FROM resolved_at - opened_at))
                   FILTER (WHERE status = 'recovered') AS avg_seconds_to_recover,
               COALESCE(SUM(amount) FILTER (WHERE status = 'recovered'), 0) AS recovered_amount,
               currency,
               percentile_disc(0.5) WITHIN GROUP
                   (ORDER BY EXTRACT(EPOCH FROM resolved_at - opened_at))
                   FILTER (WHERE status = 'recovered') AS p50_seconds_to_recover,
               SUM(amount) AS opened_amount
        FROM recovery_cases
        GROUP BY 1, kind, currency
    """,
    "ops_webhook_health": """
        WITH events AS (
            SELECT date_trunc('hour', received_at AT TIME ZONE 'UTC') AS hour, type, status,
                   source, delivery_count,
                   CASE WHEN source = 'webhook'
                        THEN EXTRACT(EPOCH FROM received_at - stripe_created_at) END AS lag
            FROM stripe_events
        )
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
    """,
    "ops_notification_queue": """
        SELECT status,
               kind,
               COUNT(*) AS notifications,
               MIN(next_attempt_at) AS oldest_next_attempt_at,
               MAX(attempts) AS max_attempts,
               COUNT(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now()) AS due_now
        FROM notifications
        GROUP BY status, kind
    """,
}


def view_sql(dialect: str) -> dict[str, str]:
    return _POSTGRESQL if dialect == "postgresql" else _SQLITE


def create_ops_views(connection: Connection) -> None:
    for name, body in view_sql(connection.dialect.name).items():
        connection.execute(text(f"CREATE VIEW {name} AS {body}"))


def drop_ops_views(connection: Connection) -> None:
    for name in VIEW_NAMES:
        connection.execute(text(f"DROP VIEW IF EXISTS {name}"))
