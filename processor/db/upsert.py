"""Race-free "insert unless it exists" for SQLite and PostgreSQL.

Duplicates are prevented by unique constraints, never by check-then-insert: two processes
racing to insert the same row both succeed, and exactly one row exists afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from processor.db import direct


def insert_ignoring_conflict(
    session: Session, model: type[Any], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert `values` unless a row with the same `conflict_on` columns exists; True if inserted."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, model, tuple(conflict_on))
    return bool(direct.execute(session, statement, values).rowcount)


@functools.cache
def _statement(dialect: str, model: type[Any], conflict_on: tuple[str, ...]) -> Executable:
    # One statement per table, its values passed as parameters: SQLAlchemy compiles it once
    # and caches it, where `.values(**row)` would rebuild its cache key on every call.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model.__table__).on_conflict_do_nothing(index_elements=list(conflict_on))
    # SQLAlchemy 2.1 reports -1 for an INSERT's rowcount on psycopg unless asked to keep it.
    return statement.execution_options(preserve_rowcount=True)
