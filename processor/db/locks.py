"""Advisory locks: serialise the writers of one business key on PostgreSQL.

Two transactions recording facts about the same object (a PaymentIntent's failure and its
success, a lost create answer and its webhook) would not see each other's uncommitted rows.
Holding a lock named after the object until COMMIT makes the second wait for the first.
SQLite needs none: it runs one writer at a time.

Most writers hold their locks until their transaction ends. The webhook batches, written as
one statement each in autocommit, hold theirs at session level (`SessionLocks`): taken in a
statement of their own, so that the batch's statement reads a snapshot taken after them, and
released when the connection's next batch takes its own, or when its drain ends.
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
    """A condition for a PostgreSQL statement's WHERE that takes the locks named by its
    `lock_keys` parameter (a list; empty takes none) before the statement touches a row.

    The subquery refers to nothing of the statement, so PostgreSQL runs it once, as an
    InitPlan checked before the first row: a write can take its locks in its own round trip.
    """
    return text("(" + _TAKE_LOCKS + ") >= 0")


# The locks the session held first go, then the new ones are taken in order: the released
# count is an InitPlan, run once before the first key's row.
_RELEASED_FIRST = " WHERE (SELECT count(*) FROM (SELECT pg_advisory_unlock_all()) AS released) = 1"
_RELEASE_AND_TAKE = text(
    "SELECT count(pg_advisory_lock(hashtextextended(key, 0)))" + _ORDERED_KEYS + _RELEASED_FIRST
)
_RELEASE = text("SELECT pg_advisory_unlock_all()")


class SessionLocks:
    """The advisory locks one PostgreSQL connection holds across its statements.

    A statement in autocommit is a transaction of its own, so transaction-scoped locks taken
    in it would be taken after its snapshot: a writer that held a lock and committed in
    between would not be seen. These are taken in a statement before it and outlive it; the
    holder gives them up with `take` (for its next statement) or `release`, and never hands
    the connection on while it holds any.
    """

    def __init__(self) -> None:
        self.held = False

    def take(self, connection: Connection, keys: Iterable[str]) -> None:
        """Release what is held, then wait for and hold a lock named after each key."""
        wanted = sorted(set(keys))
        if not wanted:
            self.release(connection)
            return
        self.held = True  # from here on: a statement that fails may have taken some
        connection.execute(_RELEASE_AND_TAKE, {KEYS_PARAMETER: wanted})

    def release(self, connection: Connection) -> None:
        if self.held:
            connection.execute(_RELEASE)
            self.held = False
