"""The rank of a set-up attempt's state: its time and its stage of the flow, as one number.

Events about one SetupIntent apply in any order: the newest state wins, and within the same
second the later stage of the flow. With the rank stored (whole seconds times 8, plus the
stage), the webhook upsert compares two numbers instead of working out both stages from
status and error in SQL, which kept its statement over the size the database driver caches.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# processor.checkout.attempts.STAGE as it was when this revision was written.
_STAGES = {
    "requires_payment_method": 1,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "canceled": 5,
    "succeeded": 6,
}
_FAILED_STAGE = 4
_RANKS_PER_SECOND = 8


def upgrade() -> None:
    with op.batch_alter_table("setup_attempts") as batch:
        batch.add_column(sa.Column("state_rank", sa.BigInteger(), nullable=True))
    attempts = sa.table(
        "setup_attempts",
        sa.column("status", sa.String()),
        sa.column("error_code", sa.String()),
        sa.column("state_changed_at", sa.DateTime()),
        sa.column("state_rank", sa.BigInteger()),
    )
    stage = sa.case(
        (
            (attempts.c.status == "requires_payment_method") & attempts.c.error_code.is_not(None),
            _FAILED_STAGE,
        ),
        *((attempts.c.status == status, value) for status, value in _STAGES.items()),
        else_=0,
    )
    if op.get_bind().dialect.name == "postgresql":
        seconds = sa.func.extract("epoch", attempts.c.state_changed_at)
    else:  # SQLite stores the time as text
        seconds = sa.func.strftime("%s", attempts.c.state_changed_at)
    op.execute(
        attempts.update()
        .where(attempts.c.state_changed_at.is_not(None))
        .values(state_rank=sa.cast(seconds, sa.BigInteger) * _RANKS_PER_SECOND + stage)
    )


def downgrade() -> None:
    with op.batch_alter_table("setup_attempts") as batch:
        batch.drop_column("state_rank")
