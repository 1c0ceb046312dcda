"""Initial schema: every table and the three ops views.

Frozen: like every version, it imports nothing from the application, so that editing a model or
a view later never changes what this version creates. The views' SQL of this version is here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPS_VIEWS = ("ops_recovery_funnel", "ops_webhook_health", "ops_notification_queue")

SQLITE_VIEWS = {
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

POSTGRESQL_VIEWS = {
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


def upgrade() -> None:
    op.create_table(
        "charges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("decline_code", sa.String(length=128), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'processing', 'requires_action', 'failed', 'error')",
            name=op.f("ck_charges_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_charges_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_charges_idempotency_key")),
        sa.UniqueConstraint("payment_intent_id", name=op.f("uq_charges_payment_intent_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_charges_reference")),
    )
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charges_customer_id_created_at"),
            ["customer_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_charges_status_created_at"), ["status", "created_at"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("preferred_locale", sa.String(length=35), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_email"), ["email"], unique=False)

    op.create_table(
        "payment_methods",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("setup_intent_id", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("card_brand", sa.String(length=32), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("card_exp_month", sa.Integer(), nullable=True),
        sa.Column("card_exp_year", sa.Integer(), nullable=True),
        sa.Column("card_funding", sa.String(length=16), nullable=True),
        sa.Column("card_country", sa.String(length=2), nullable=True),
        sa.Column("sepa_last4", sa.String(length=4), nullable=True),
        sa.Column("sepa_bank_code", sa.String(length=32), nullable=True),
        sa.Column("sepa_country", sa.String(length=2), nullable=True),
        sa.Column("generated_from", sa.String(length=32), nullable=True),
        sa.Column("allow_redisplay", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'detached')", name=op.f("ck_payment_methods_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
    )
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_methods_customer_id_status_attached_at"),
            ["customer_id", "status", "attached_at"],
            unique=False,
        )

    op.create_table(
        "recovery_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("decline_code", sa.String(length=128), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_charge_id", sa.String(length=255), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('authentication_required', 'payment_method_required')",
            name=op.f("ck_recovery_cases_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'recovered', 'canceled')", name=op.f("ck_recovery_cases_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_cases")),
        sa.UniqueConstraint("payment_intent_id", name=op.f("uq_recovery_cases_payment_intent_id")),
    )
    with op.batch_alter_table("recovery_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recovery_cases_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_recovery_cases_status_opened_at"), ["status", "opened_at"], unique=False
        )

    op.create_table(
        "setup_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("setup_intent_id", sa.String(length=255), nullable=True),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("confirmation_token_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("decline_code", sa.String(length=128), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_attempts")),
        sa.UniqueConstraint("setup_intent_id", name=op.f("uq_setup_attempts_setup_intent_id")),
    )
    with op.batch_alter_table("setup_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_setup_attempts_customer_id_created_at"),
            ["customer_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_setup_attempts_status_created_at"),
            ["status", "created_at"],
            unique=False,
        )

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("api_version", sa.String(length=64), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("secret_index", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("payload_pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'failed', 'ignored')",
            name=op.f("ck_stripe_events_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_events_object_id"), ["object_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stripe_events_status_received_at"),
            ["status", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_stripe_events_type_received_at"), ["type", "received_at"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'dead', 'canceled', 'skipped')",
            name=op.f("ck_notifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["recovery_cases.id"],
            name=op.f("fk_notifications_case_id_recovery_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )

    views = POSTGRESQL_VIEWS if op.get_bind().dialect.name == "postgresql" else SQLITE_VIEWS
    for name in OPS_VIEWS:
        op.execute(f"CREATE VIEW {name} AS {views[name]}")


def downgrade() -> None:
    for name in OPS_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_case_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_events_type_received_at"))
        batch_op.drop_index(batch_op.f("ix_stripe_events_status_received_at"))
        batch_op.drop_index(batch_op.f("ix_stripe_events_object_id"))

    op.drop_table("stripe_events")
    with op.batch_alter_table("setup_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_attempts_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_setup_attempts_customer_id_created_at"))

    op.drop_table("setup_attempts")
    with op.batch_alter_table("recovery_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_cases_status_opened_at"))
        batch_op.drop_index(batch_op.f("ix_recovery_cases_customer_id"))

    op.drop_table("recovery_cases")
    with op.batch_alter_table("payment_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_methods_customer_id_status_attached_at"))

    op.drop_table("payment_methods")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_email"))

    op.drop_table("customers")
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charges_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_charges_customer_id_created_at"))

    op.drop_table("charges")
