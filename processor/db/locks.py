"""Transaction-scoped advisory locks: serialise the writers of one business key on PostgreSQL.

Two transactions recording facts about the same object (a PaymentIntent's failure and its
success, a lost create answer and its webhook) would not see each other's uncommitted rows.
Holding a lock named after the object until COMMIT makes the second wait for the first.
SQLite needs none: it runs one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

# Sorted, so that two transactions locking overlapping keys take them in the same order.
_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))"
    " FROM (SELECT DISTINCT unnest(CAST(:keys AS text[])) AS key ORDER BY 1) AS ordered"
)


def lock_keys_until_commit(connection: Connection, keys: Iterable[str]) -> None:
    """Wait for, then hold until the transaction ends, a lock named after each key."""
    if connection.dialect.name != "postgresql":
        return
    wanted = sorted(set(keys))
    if wanted:
        connection.execute(_LOCK_KEYS, {"keys": wanted})
