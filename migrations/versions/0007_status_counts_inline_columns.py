"""Ops at scale, continued. Rows per status of the outbox, the charges and the retries, kept by
triggers in `status_counts`, so that `/metrics` and `ops_notification_queue` read a few rows
instead of counting every row of those tables.

Each insert, status change and delete appends a +1 or -1 row in the same transaction (append
only: writers never wait for each other on a shared counter row); a count is the SUM of its
rows, and the application folds the rows into one per status from time to time. The triggers
are written once per dialect and do the same on both.

On PostgreSQL the short columns of `stripe_events` that scans read (`id`, `type`, `object_id`,
…) are kept in the row: with 0004's `toast_tuple_target = 128`, PostgreSQL moved any of them
over 24 bytes (a Stripe id, `payment_intent.succeeded`) out of line as well as the payload,
so a scan of the webhook-health window fetched several TOAST values per event. STORAGE MAIN
lets them be compressed but moved out only when a row would not fit a page. Rows written
earlier keep their out-of-line values; the windows read recent rows, written after this.

Frozen: imports nothing from the application.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# stripe_events' short columns, kept in the row (PostgreSQL).
INLINE_EVENT_COLUMNS = ("id", "type", "api_version", "object_id", "status", "source")
# Counted tables and what each counts by beside its status ('' when nothing).
COUNTED = {"notifications": "kind", "charges": None, "charge_retries": None}

OLD_QUEUE_VIEW = {
    "sqlite": """
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
    "postgresql": """
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

# The counts come from status_counts; the oldest due time and the most attempts of each group
# are one probe each into an index on (status, kind, …); due_now reads the due range only.
QUEUE_VIEW = """
    WITH counted AS (
        SELECT status, kind, SUM(count) AS notifications
        FROM status_counts
        WHERE table_name = 'notifications'
        GROUP BY status, kind
        HAVING SUM(count) <> 0
    )
    SELECT c.status,
           c.kind,
           CAST(c.notifications AS {bigint}) AS notifications,
           (SELECT MIN(n.next_attempt_at) FROM notifications n
            WHERE n.status = c.status AND n.kind = c.kind) AS oldest_next_attempt_at,
           (SELECT MAX(n.attempts) FROM notifications n
            WHERE n.status = c.status AND n.kind = c.kind) AS max_attempts,
           CASE WHEN c.status = 'pending'
                THEN (SELECT COUNT(*) FROM notifications n
                      WHERE n.status = 'pending' AND n.kind = c.kind
                        AND n.next_attempt_at <= {now})
                ELSE 0 END AS due_now
    FROM counted c
"""
QUEUE_VIEW_PARTS = {
    "sqlite": {"bigint": "INTEGER", "now": "CURRENT_TIMESTAMP"},
    "postgresql": {"bigint": "bigint", "now": "now()"},
}


def _extra(table: str) -> list[str]:
    column = COUNTED[table]
    return [column] if column else []


def _kind(table: str, row: str) -> str:
    column = COUNTED[table]
    return f"{row}.{column}" if column else "''"


def _changed(table: str, distinct: str) -> tuple[str, str]:
    """The trigger's WHEN condition and its UPDATE OF columns."""
    columns = ["status", *_extra(table)]
    return " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in columns), ", ".join(columns)


def _postgresql_triggers(table: str) -> list[str]:
    condition, columns = _changed(table, "IS DISTINCT FROM")
    function = f"{table}_count_status"
    return [
        f"""
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                INSERT INTO status_counts (table_name, status, kind, count)
                VALUES ('{table}', OLD.status, {_kind(table, "OLD")}, -1);
            END IF;
            IF TG_OP <> 'DELETE' THEN
                INSERT INTO status_counts (table_name, status, kind, count)
                VALUES ('{table}', NEW.status, {_kind(table, "NEW")}, 1);
            END IF;
            RETURN NULL;
        END $$""",  # noqa: S608 - names from COUNTED, no input
        f"""CREATE TRIGGER {table}_count_insert_delete AFTER INSERT OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {function}()""",
        f"""CREATE TRIGGER {table}_count_update AFTER UPDATE OF {columns} ON {table}
            FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION {function}()""",
    ]


def _sqlite_triggers(table: str) -> list[str]:
    condition, columns = _changed(table, "IS NOT")
    insert = "INSERT INTO status_counts (table_name, status, kind, count) VALUES"
    old = f"('{table}', OLD.status, {_kind(table, 'OLD')}, -1)"
    new = f"('{table}', NEW.status, {_kind(table, 'NEW')}, 1)"
    return [
        f"CREATE TRIGGER {table}_count_insert AFTER INSERT ON {table}"
        f" BEGIN {insert} {new}; END",
        f"CREATE TRIGGER {table}_count_delete AFTER DELETE ON {table}"
        f" BEGIN {insert} {old}; END",
        f"CREATE TRIGGER {table}_count_update AFTER UPDATE OF {columns} ON {table}"
        f" WHEN {condition} BEGIN {insert} {old}, {new}; END",
    ]


def _event_columns_storage(storage: str) -> None:
    alterations = ", ".join(f"ALTER COLUMN {c} SET STORAGE {storage}" for c in INLINE_EVENT_COLUMNS)
    op.execute(f"ALTER TABLE stripe_events {alterations}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "status_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_counts")),
    )
    if dialect == "postgresql":
        _event_columns_storage("MAIN")
        # Folding deletes every row it sums: vacuum after each thousand dead rows, whatever the
        # table's size, so that the sum's scan never wades through the rows folded earlier.
        op.execute(
            "ALTER TABLE status_counts SET (autovacuum_vacuum_threshold = 1000,"
            " autovacuum_vacuum_scale_factor = 0)"
        )
    triggers = _postgresql_triggers if dialect == "postgresql" else _sqlite_triggers
    for table in COUNTED:
        # The triggers first: on PostgreSQL creating them locks out writers until the commit,
        # so the counts below and every later change add up.
        for statement in triggers(table):
            op.execute(statement)
        grouping = ", ".join(["status", *_extra(table)])
        op.execute(
            f"INSERT INTO status_counts (table_name, status, kind, count)"  # noqa: S608
            f" SELECT '{table}', status, {_kind(table, table)}, COUNT(*) FROM {table}"
            f" GROUP BY {grouping}"
        )
    op.drop_index(
        "ix_notifications_status_kind_next_attempt_at_attempts", table_name="notifications"
    )
    op.create_index(
        "ix_notifications_status_kind_next_attempt_at",
        "notifications",
        ["status", "kind", "next_attempt_at"],
    )
    op.create_index(
        "ix_notifications_status_kind_attempts", "notifications", ["status", "kind", "attempts"]
    )
    op.execute("DROP VIEW ops_notification_queue")
    op.execute(
        "CREATE VIEW ops_notification_queue AS "
        + QUEUE_VIEW.format(**QUEUE_VIEW_PARTS[dialect])
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _event_columns_storage("EXTENDED")
    op.execute("DROP VIEW ops_notification_queue")
    op.execute("CREATE VIEW ops_notification_queue AS " + OLD_QUEUE_VIEW[dialect])
    op.drop_index("ix_notifications_status_kind_attempts", table_name="notifications")
    op.drop_index("ix_notifications_status_kind_next_attempt_at", table_name="notifications")
    op.create_index(
        "ix_notifications_status_kind_next_attempt_at_attempts",
        "notifications",
        ["status", "kind", "next_attempt_at", "attempts"],
    )
    for table in COUNTED:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {table}_count_update ON {table}")
            op.execute(f"DROP TRIGGER {table}_count_insert_delete ON {table}")
            op.execute(f"DROP FUNCTION {table}_count_status()")
        else:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_count_{event}")
    op.drop_table("status_counts")
