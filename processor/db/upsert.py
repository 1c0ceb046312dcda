"""Race-free "insert unless it exists" for SQLite and PostgreSQL.

Duplicates are prevented by unique constraints, never by check-then-insert: two processes
racing to insert the same row both succeed, and exactly one row exists afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflict(
    session: Session, model: type[Any], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert `values` unless a row with the same `conflict_on` columns exists; True if inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict_on)
    # SQLAlchemy 2.1 reports -1 for an INSERT's rowcount on psycopg unless asked to keep it.
    result = session.execute(statement.execution_options(preserve_rowcount=True))
    return bool(result.rowcount)  # type: ignore[attr-defined]
