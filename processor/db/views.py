"""SQL for the ops views, one spelling per database (documented in docs/database.md).

Views are replaced, not altered: a migration that changes one calls `drop_ops_views` and then
creates the new text.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

VIEW_NAMES = ("ops_recovery_funnel", "ops_webhook_health", "ops_notification_queue")

_SQLITE = {
    "ops_recovery_funnel": """
        SELECT date(opened_at) AS day,
               kind,
               COUNT(*) AS opened,
               SUM(CASE WHEN status = 'recovered' THEN 1 ELSE 0 END) AS recovered,
               SUM(CASE WHEN status = 'canceled' THEN 1 ELSE 0 END) AS canceled,
               SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS still_open,
               ROUND(1.0 * SUM(CASE WHEN status = 'recovered' THEN 1 ELSE 0 END) / COUNT(*), 4)
                   AS recovery_rate,
               AVG(CASE WHEN status = 'recovered'
                        THEN (julianday(resolved_at) - julianday(opened_at)) * 86400 END)
                   AS avg_seconds_to_recover,
               SUM(CASE WHEN status = 'recovered' THEN amount ELSE 0 END) AS recovered_amount,
               currency
        FROM recovery_cases
        GROUP BY date(opened_at), kind, currency
    """,
    "ops_webhook_health": """
        SELECT strftime('%Y-%m-%d %H:00:00', received_at) AS hour,
               type,
               COUNT(*) AS received,
               SUM(delivery_count - 1) AS duplicates,
               SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
               SUM(CASE WHEN status = 'ignored' THEN 1 ELSE 0 END) AS ignored,
               SUM(CASE WHEN status = 'processed' THEN 1 ELSE 0 END) AS processed,
               AVG((julianday(received_at) - julianday(stripe_created_at)) * 86400)
                   AS avg_lag_seconds,
               NULL AS p50_lag_seconds,
               NULL AS p95_lag_seconds
        FROM stripe_events
        GROUP BY strftime('%Y-%m-%d %H:00:00', received_at), type
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
               currency
        FROM recovery_cases
        GROUP BY 1, kind, currency
    """,
    "ops_webhook_health": """
        SELECT date_trunc('hour', received_at AT TIME ZONE 'UTC') AS hour,
               type,
               COUNT(*) AS received,
               SUM(delivery_count - 1) AS duplicates,
               COUNT(*) FILTER (WHERE status = 'failed') AS failed,
               COUNT(*) FILTER (WHERE status = 'ignored') AS ignored,
               COUNT(*) FILTER (WHERE status = 'processed') AS processed,
               AVG(EXTRACT(EPOCH FROM received_at - stripe_created_at)) AS avg_lag_seconds,
               percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY EXTRACT(EPOCH FROM received_at - stripe_created_at))
                   AS p50_lag_seconds,
               percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY EXTRACT(EPOCH FROM received_at - stripe_created_at))
                   AS p95_lag_seconds
        FROM stripe_events
        GROUP BY 1, type
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
