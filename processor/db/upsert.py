"""Race-free "insert unless it exists" for SQLite and PostgreSQL.

Duplicates are prevented by unique constraints, never by check-then-insert: two processes
racing to insert the same row both succeed, and exactly one row exists afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert

from processor.db import direct


def insert_ignoring_conflict(
    session: Session, model: type[Any], values: Mapping[str, Any], conflict_on: Sequence[str]
) -> bool:
    """Insert `values` unless a row with the same `conflict_on` columns exists; True if inserted."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, model, tuple(conflict_on))
    return bool(direct.execute(session, statement, values).rowcount)


def insert_many_ignoring_conflict(
    session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]], conflict_on: str
) -> set[Any]:
    """Insert each of `rows` (same columns) unless its `conflict_on` value is stored; one
    statement for all of them. Returns the `conflict_on` values of the rows it inserted.

    Rows repeating a value within `rows` are inserted once. They go in sorted by that value,
    so two transactions inserting overlapping rows lock them in the same order and never
    deadlock over them.
    """
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda row: row[conflict_on])
    columns = tuple(ordered[0])
    statement = _many_statement(
        session.get_bind().dialect.name, model, conflict_on, columns, len(ordered)
    )
    parameters = {
        f"r{index}_{name}": row[name] for index, row in enumerate(ordered) for name in columns
    }
    return {row[0] for row in direct.execute(session, statement, parameters).all()}


@functools.lru_cache(maxsize=256)
def _many_statement(
    dialect: str, model: type[Any], conflict_on: str, columns: tuple[str, ...], count: int
) -> Executable:
    # One statement per table, column list and row count, values as parameters.
    table = model.__table__
    values = [
        {name: bindparam(f"r{index}_{name}", type_=table.c[name].type) for name in columns}
        for index in range(count)
    ]
    statement = insert_ignoring_conflict_statement(dialect, table, (conflict_on,), (conflict_on,))
    return statement.values(values)


@functools.cache
def _statement(dialect: str, model: type[Any], conflict_on: tuple[str, ...]) -> Executable:
    statement = insert_ignoring_conflict_statement(dialect, model.__table__, conflict_on)
    # SQLAlchemy 2.1 reports -1 for an INSERT's rowcount on psycopg unless asked to keep it.
    return statement.execution_options(preserve_rowcount=True)


@functools.cache
def insert_ignoring_conflict_statement(
    dialect: str, table: Table, conflict_on: tuple[str, ...], returning: tuple[str, ...] = ()
) -> Insert:
    """`INSERT INTO table ... ON CONFLICT (conflict_on) DO NOTHING [RETURNING ...]`, built once.

    One statement per table, its values passed as parameters: SQLAlchemy compiles it once,
    where `.values(**row)` would rebuild its cache key on every call. With `returning`, the
    answer has a row only when the row was new.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict_on))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    return statement
