"""`stripe_events` built for retention: on PostgreSQL partitioned by week of Stripe's
`created`, so that `processor prune` drops whole weeks instead of rewriting rows.

The primary key becomes (`id`, `stripe_created_at`) on both databases: a partition's unique
keys must hold the partition key, and an event's `created` never changes, so a redelivery
still meets its first row. `payload_pruned_at` and the index of payloads left to prune go:
prune now deletes settled events past retention (failed ones stay), whole weeks at a time;
an index on `stripe_created_at` serves what it deletes row by row.

The table is rebuilt and its rows copied, in one transaction (a few minutes per few million
events on PostgreSQL, during which the receiver's inserts wait: docs/operations.md). On
PostgreSQL there is one partition per week from the oldest event's week (at most 26 weeks
back) to four weeks ahead, and a default partition for everything outside them. The views
reading the table are dropped and created again as they were.

Frozen: imports nothing from the application.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEEK = timedelta(days=7)
WEEKS_BACK = 26
WEEKS_AHEAD = 4
# Every index either shape has (without the `ix_stripe_events_` in front).
INDEXES = (
    "object_id", "received_hour_type", "failed_last_received_at", "unpruned_received_at",
    "stripe_created_at",
)
INLINE_COLUMNS = ("id", "type", "api_version", "object_id", "status", "source")  # 0007
LZ4_AVAILABLE = """
    SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""
HOUR_RECEIVED = {
    "postgresql": "date_trunc('hour', received_at AT TIME ZONE 'UTC')",
    "sqlite": "strftime('%Y-%m-%d %H:00:00', received_at)",
}
SHARED_COLUMNS = (
    "id, type, api_version, livemode, object_id, stripe_created_at, received_at,"
    " last_received_at, processed_at, status, error, delivery_count, attempt_count,"
    " secret_index, source, payload"
)
DEPENDENT_VIEWS = {
    "postgresql": """
        SELECT DISTINCT v.relname, pg_get_viewdef(v.oid)
        FROM pg_depend d
        JOIN pg_rewrite r ON r.oid = d.objid
        JOIN pg_class v ON v.oid = r.ev_class
        WHERE d.refobjid = 'stripe_events'::regclass AND v.relname <> 'stripe_events'
    """,
    "sqlite": """
        SELECT name, sql FROM sqlite_master WHERE type = 'view' AND sql LIKE '%stripe_events%'
    """,
}


def _columns(*, with_pruned_at: bool) -> list[sa.Column[object]]:
    columns = [
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
    ]
    if with_pruned_at:
        columns.append(sa.Column("payload_pruned_at", sa.DateTime(timezone=True), nullable=True))
    return columns


def _views(dialect: str) -> list[tuple[str, str]]:
    """The views reading stripe_events, as (name, definition), dropped here."""
    views = [(name, sql) for name, sql in op.get_bind().execute(sa.text(DEPENDENT_VIEWS[dialect]))]
    for name, _sql in views:
        op.execute(f"DROP VIEW {name}")
    return views


def _restore_views(dialect: str, views: list[tuple[str, str]]) -> None:
    for name, sql in views:
        op.execute(sql if dialect == "sqlite" else f"CREATE VIEW {name} AS {sql}")


def _rebuild(*, partitioned: bool, with_pruned_at: bool, primary_key: tuple[str, ...]) -> None:
    """Move stripe_events' rows into a table of the new shape, under the same name."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    views = _views(dialect)
    op.rename_table("stripe_events", "stripe_events_old")
    if dialect == "postgresql":  # constraint names share the schema with index names
        op.execute(
            "ALTER TABLE stripe_events_old RENAME CONSTRAINT pk_stripe_events TO pk_stripe_events_old"
        )
    for index in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS ix_stripe_events_{index}")
    options = {"postgresql_partition_by": "RANGE (stripe_created_at)"} if partitioned else {}
    op.create_table(
        "stripe_events",
        *_columns(with_pruned_at=with_pruned_at),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'failed', 'ignored')",
            name=op.f("ck_stripe_events_status"),
        ),
        sa.PrimaryKeyConstraint(*primary_key, name=op.f("pk_stripe_events")),
        **options,
    )
    if dialect == "postgresql":
        _postgresql_storage(bind, partitioned=partitioned)
    op.execute(
        f"INSERT INTO stripe_events ({SHARED_COLUMNS})"  # noqa: S608 (constants)
        f" SELECT {SHARED_COLUMNS} FROM stripe_events_old"
    )
    op.drop_table("stripe_events_old")
    _indexes(dialect, with_pruned_at=with_pruned_at)
    _restore_views(dialect, views)


def _postgresql_storage(bind: sa.Connection, *, partitioned: bool) -> None:
    """0004's, 0007's and 0009's storage settings, and the partitions."""
    for column in INLINE_COLUMNS:
        op.execute(f"ALTER TABLE stripe_events ALTER COLUMN {column} SET STORAGE MAIN")
    if bind.execute(sa.text(LZ4_AVAILABLE)).scalar():
        op.execute("ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4")
    options = "WITH (toast_tuple_target = 128)"
    if not partitioned:
        op.execute("ALTER TABLE stripe_events SET (toast_tuple_target = 128)")
        return
    op.execute(f"CREATE TABLE stripe_events_default PARTITION OF stripe_events DEFAULT {options}")
    oldest = bind.execute(sa.text("SELECT MIN(stripe_created_at) FROM stripe_events_old")).scalar()
    now = bind.execute(sa.text("SELECT now()")).scalar()
    first = _monday(max(oldest or now, now - WEEKS_BACK * WEEK))
    week = first
    while week <= _monday(now) + WEEKS_AHEAD * WEEK:
        end = week + WEEK
        op.execute(
            f"CREATE TABLE stripe_events_{week:%Y%m%d} PARTITION OF stripe_events"
            f" FOR VALUES FROM ('{week:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')"
            f" {options}"
        )
        week = end


def _monday(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _indexes(dialect: str, *, with_pruned_at: bool) -> None:
    op.create_index("ix_stripe_events_object_id", "stripe_events", ["object_id"])
    op.create_index(
        "ix_stripe_events_received_hour_type", "stripe_events", [sa.text(HOUR_RECEIVED[dialect]), "type"]
    )
    _partial_index("failed_last_received_at", "last_received_at", "status = 'failed'")
    if with_pruned_at:
        _partial_index("unpruned_received_at", "received_at", "payload IS NOT NULL")
    else:
        op.create_index("ix_stripe_events_stripe_created_at", "stripe_events", ["stripe_created_at"])


def _partial_index(name: str, column: str, condition: str) -> None:
    where = sa.text(condition)
    op.create_index(
        f"ix_stripe_events_{name}", "stripe_events", [column],
        postgresql_where=where, sqlite_where=where,
    )


def upgrade() -> None:
    partitioned = op.get_bind().dialect.name == "postgresql"
    _rebuild(partitioned=partitioned, with_pruned_at=False, primary_key=("id", "stripe_created_at"))


def downgrade() -> None:
    # An event id is unique in practice; should two rows share one, the later-created goes.
    op.execute(
        "DELETE FROM stripe_events WHERE EXISTS (SELECT 1 FROM stripe_events AS e"
        " WHERE e.id = stripe_events.id AND e.stripe_created_at < stripe_events.stripe_created_at)"
    )
    _rebuild(partitioned=False, with_pruned_at=True, primary_key=("id",))
