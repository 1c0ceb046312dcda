"""Initial schema: every table and the three ops views.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import processor.db.types
from processor.db.views import create_ops_views, drop_ops_views

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
        sa.Column("created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
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
        sa.Column("created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
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
        sa.Column("attached_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("detached_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "details_updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
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
        sa.Column("opened_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_charge_id", sa.String(length=255), nullable=True),
        sa.Column("resolved_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
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
        sa.Column("created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state_changed_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
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
        sa.Column(
            "stripe_created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("received_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_received_at", processor.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("processed_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("secret_index", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column(
            "payload_pruned_at", processor.db.types.UTCDateTime(timezone=True), nullable=True
        ),
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
        sa.Column("next_attempt_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_until", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", processor.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", processor.db.types.UTCDateTime(timezone=True), nullable=False),
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

    create_ops_views(op.get_bind())


def downgrade() -> None:
    drop_ops_views(op.get_bind())
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
