"""Event payloads compressed with LZ4 on PostgreSQL.

Every payload is compressed and moved out of line as it is stored (0004's
`toast_tuple_target`), on the webhook path. LZ4 compresses and decompresses a JSON payload
several times faster than PostgreSQL's default pglz, at a similar ratio: measured, it took
about a tenth off the database's CPU per stored event (docs/performance.md). Only new values
are compressed so; stored ones keep pglz and stay readable. A server built without LZ4 (the
setting's choices do not list it) keeps pglz. SQLite stores payloads as they are.

Frozen: imports nothing from the application.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LZ4_AVAILABLE = """
    SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""


def _payload_compression(method: str) -> None:
    op.execute(f"ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION {method}")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(sa.text(LZ4_AVAILABLE)).scalar():
        _payload_compression("lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _payload_compression("default")
