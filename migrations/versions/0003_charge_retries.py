"""Automatic retries of soft declines: the `charge_retries` table and the ops view that splits
recovered money by who won it back (a retry or the customer).

Frozen like every version: it imports nothing from the application. A new view, rather than a
changed `ops_recovery_funnel`, so that this revision touches no existing object.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same SQL on SQLite and PostgreSQL.
OPS_RECOVERED_BY = """
    SELECT currency,
           CASE WHEN EXISTS (
                    SELECT 1 FROM charge_retries
                    WHERE charge_retries.case_id = recovery_cases.id
                      AND charge_retries.status = 'succeeded')
                THEN 'retry' ELSE 'customer' END AS recovered_by,
           COUNT(*) AS recovered,
           SUM(amount) AS recovered_amount
    FROM recovery_cases
    WHERE status = 'recovered'
    GROUP BY 1, 2
"""


def upgrade() -> None:
    op.create_table(
        "charge_retries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("charge_reference", sa.String(length=200), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("decline_code", sa.String(length=128), nullable=True),
        sa.Column("advice_code", sa.String(length=64), nullable=True),
        sa.Column("network_advice_code", sa.String(length=16), nullable=True),
        sa.Column("network_decline_code", sa.String(length=16), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled')",
            name=op.f("ck_charge_retries_status"),
        ),
        sa.CheckConstraint("attempt > 0", name=op.f("ck_charge_retries_attempt_positive")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["recovery_cases.id"],
            name=op.f("fk_charge_retries_case_id_recovery_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_retries")),
        sa.UniqueConstraint("case_id", "attempt", name=op.f("uq_charge_retries_case_id_attempt")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_charge_retries_idempotency_key")),
    )
    op.create_index(op.f("ix_charge_retries_status_due_at"), "charge_retries", ["status", "due_at"])
    op.execute(f"CREATE VIEW ops_recovered_by AS {OPS_RECOVERED_BY}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ops_recovered_by")
    op.drop_index(op.f("ix_charge_retries_status_due_at"), table_name="charge_retries")
    op.drop_table("charge_retries")
