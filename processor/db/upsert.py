"""Race-free "insert unless it exists" and "insert or merge" for SQLite and PostgreSQL.

Duplicates are prevented by unique constraints, never by check-then-insert: two processes
racing to insert the same row both succeed, and exactly one row exists afterwards. Statements
are built once per table (values travel as parameters), so SQLAlchemy compiles each once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(dialect: str, table: Table) -> Any:
    """The INSERT construct that knows ON CONFLICT for this dialect (both share its API)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def earliest(stored: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    """The earlier of two nullable times (NULL means unknown, not earliest)."""
    return case(
        (new.is_(None), stored), (stored.is_(None), new), (stored > new, new), else_=stored
    )


def insert_ignoring_conflict(
    session: Session, model: type[Any], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert `values` unless a row with the same `conflict_on` columns exists; True if inserted."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, model.__table__, tuple(conflict_on))
    return bool(session.connection().execute(statement, values).rowcount)


@functools.cache
def _statement(dialect: str, table: Table, conflict_on: tuple[str, ...]) -> Any:
    statement = insert_ignoring_conflict_statement(dialect, table, conflict_on)
    # SQLAlchemy 2.1 reports -1 for an INSERT's rowcount on psycopg unless asked to keep it.
    return statement.execution_options(preserve_rowcount=True)


@functools.cache
def insert_ignoring_conflict_statement(
    dialect: str, table: Table, conflict_on: tuple[str, ...], returning: tuple[str, ...] = ()
) -> Any:
    """`INSERT INTO table ... ON CONFLICT (conflict_on) DO NOTHING [RETURNING ...]`, built once;
    with no `conflict_on`, a conflict on any unique constraint.

    With `returning`, the answer has a row only when the row was new.
    """
    statement = dialect_insert(dialect, table).on_conflict_do_nothing(
        index_elements=list(conflict_on) or None
    )
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    return statement
