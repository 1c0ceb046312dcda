"""Advisory locks: serialise the writers of one business key on PostgreSQL.

Two transactions recording facts about the same object (a PaymentIntent's failure and its
success, a lost create answer and its webhook) would not see each other's uncommitted rows.
Holding a lock named after the object until COMMIT makes the second wait for the first.
SQLite needs none: it runs one writer at a time.

Every writer holds its locks until its transaction ends. A statement reads the snapshot taken
when it starts, so a read that must see what the last holder wrote belongs to a statement
after the one that took the locks (`lock_keys_until_commit`, or `locks_taken_first` in the
first statement of the transaction, or in the first execution of the webhook batch's).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, TextClause, text

KEYS_PARAMETER = "lock_keys"
# Sorted, so that two transactions locking overlapping keys take them in the same order.
_ORDERED_KEYS = (
    " FROM (SELECT DISTINCT unnest(CAST(:lock_keys AS text[])) AS key ORDER BY 1) AS ordered"
)
_TAKE_LOCKS = "SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))" + _ORDERED_KEYS
_LOCK_KEYS = text(_TAKE_LOCKS)


def lock_keys_until_commit(connection: Connection, keys: Iterable[str]) -> None:
    """Wait for, then hold until the transaction ends, a lock named after each key."""
    if connection.dialect.name != "postgresql":
        return
    wanted = sorted(set(keys))
    if wanted:
        connection.execute(_LOCK_KEYS, {KEYS_PARAMETER: wanted})


def locks_taken_first() -> TextClause:
    """A condition for a PostgreSQL statement (in its WHERE, or what it selects) that takes
    the locks named by its `lock_keys` parameter (a list; empty takes none) before the
    statement touches a row.

    The subquery refers to nothing of the statement, so PostgreSQL runs it once, as an
    InitPlan checked before the first row: a write can take its locks in its own round trip.
    """
    return text("(" + _TAKE_LOCKS + ") >= 0")
