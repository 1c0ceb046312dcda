"""Transaction-scoped advisory locks: serialise the writers of one business key on PostgreSQL.

Two transactions recording facts about the same object (a PaymentIntent's failure and its
success, a lost create answer and its webhook) would not see each other's uncommitted rows.
Holding a lock named after the object until COMMIT makes the second wait for the first.
SQLite needs none: it runs one writer at a time.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from processor.db import direct

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:p_key, 0))")


def lock_until_commit(session: Session, key: str) -> None:
    """Wait for, then hold until the transaction ends, the lock named `key` (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        direct.execute(session, _ADVISORY_LOCK, {"p_key": key})
