"""Ops at scale: indexes that match the views' grouping and windows, the outbox claim's partial
index, one for retention, and (PostgreSQL) event payloads stored out of line.

Frozen: imports nothing from the application. The views keep their SQL; their `hour` and `day`
expressions are indexed here exactly as the views of 0001 compute them, so a filter on `hour`
or `day` reads an index range instead of the whole table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The grouping expressions of ops_webhook_health and ops_recovery_funnel, per dialect.
HOUR_RECEIVED = {
    "postgresql": "date_trunc('hour', received_at AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:00:00', received_at)",
}
DAY_OPENED = {
    "postgresql": "((opened_at AT TIME ZONE 'UTC')::date)",
    "sqlite": "date(opened_at)",
}


def _partial_index(name: str, table: str, columns: list[str], condition: str) -> None:
    where = sa.text(condition)
    op.create_index(name, table, columns, postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_stripe_events_type_received_at", table_name="stripe_events")
    op.drop_index("ix_stripe_events_status_received_at", table_name="stripe_events")
    op.create_index(
        "ix_stripe_events_received_hour_type",
        "stripe_events",
        [sa.text(HOUR_RECEIVED[dialect]), "type"],
    )
    _partial_index(
        "ix_stripe_events_failed_last_received_at",
        "stripe_events",
        ["last_received_at"],
        "status = 'failed'",
    )
    _partial_index(
        "ix_stripe_events_unpruned_received_at",
        "stripe_events",
        ["received_at"],
        "payload IS NOT NULL",
    )
    op.create_index(
        "ix_recovery_cases_opened_day", "recovery_cases", [sa.text(DAY_OPENED[dialect])]
    )
    _partial_index(
        "ix_payment_methods_missing_details",
        "payment_methods",
        ["created_at"],
        "type IS NULL AND details_updated_at IS NULL",
    )

    op.drop_index("ix_notifications_status_next_attempt_at", table_name="notifications")
    op.create_index(
        "ix_notifications_status_kind_next_attempt_at_attempts",
        "notifications",
        ["status", "kind", "next_attempt_at", "attempts"],
    )
    _partial_index(
        "ix_notifications_claimable",
        "notifications",
        ["next_attempt_at", "id"],
        "status IN ('pending', 'sending')",
    )
    if dialect == "postgresql":
        # Compress a payload, then move it to TOAST whenever the row would exceed 128 bytes:
        # scans of stripe_events then read ~200-byte rows, not kilobytes of JSON. Rows written
        # earlier keep their inline payloads until retention drops them.
        op.execute("ALTER TABLE stripe_events SET (toast_tuple_target = 128)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE stripe_events RESET (toast_tuple_target)")
    op.drop_index("ix_notifications_claimable", table_name="notifications")
    op.drop_index(
        "ix_notifications_status_kind_next_attempt_at_attempts", table_name="notifications"
    )
    op.create_index(
        "ix_notifications_status_next_attempt_at", "notifications", ["status", "next_attempt_at"]
    )
    op.drop_index("ix_payment_methods_missing_details", table_name="payment_methods")
    op.drop_index("ix_recovery_cases_opened_day", table_name="recovery_cases")
    op.drop_index("ix_stripe_events_unpruned_received_at", table_name="stripe_events")
    op.drop_index("ix_stripe_events_failed_last_received_at", table_name="stripe_events")
    op.drop_index("ix_stripe_events_received_hour_type", table_name="stripe_events")
    op.create_index(
        "ix_stripe_events_status_received_at", "stripe_events", ["status", "received_at"]
    )
    op.create_index("ix_stripe_events_type_received_at", "stripe_events", ["type", "received_at"])
