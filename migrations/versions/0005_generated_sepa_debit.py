"""Generated SEPA Direct Debit methods: which set-up attempt produced a method, and what each
set-up attempt was confirmed with, so that a method iDEAL or Bancontact left behind can say so.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("setup_attempts") as batch:
        batch.add_column(sa.Column("latest_attempt_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("payment_method_type", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_setup_attempts_latest_attempt_id"), "setup_attempts", ["latest_attempt_id"]
    )
    with op.batch_alter_table("payment_methods") as batch:
        batch.add_column(sa.Column("generated_from_attempt", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_methods") as batch:
        batch.drop_column("generated_from_attempt")
    op.drop_index(op.f("ix_setup_attempts_latest_attempt_id"), table_name="setup_attempts")
    with op.batch_alter_table("setup_attempts") as batch:
        batch.drop_column("payment_method_type")
        batch.drop_column("latest_attempt_id")
