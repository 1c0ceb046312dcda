"""The one statement every delivery runs — insert into `stripe_events` unless the id exists —
sent through the DB-API cursor of the session's connection, inside its transaction.

Why: through SQLAlchemy's execution path (execution context, bind processing of sixteen
parameters, result wrapping) this statement cost several times what SQLite or psycopg spend
on it, and it runs for every event. The SQL text is built once per dialect from the table's
own column names; datetimes go through the column type's own bind processor, so the stored
values are exactly what SQLAlchemy would have written. Driver errors are re-raised as
SQLAlchemy's, so callers (503 on `OperationalError`, rollback) see no difference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from processor.db.models import StripeEvent

_EVENTS = StripeEvent.__table__
COLUMNS = (
    "id", "type", "api_version", "livemode", "object_id", "stripe_created_at", "received_at",
    "last_received_at", "processed_at", "status", "error", "delivery_count", "attempt_count",
    "secret_index", "source", "payload",
)  # fmt: skip


@functools.cache
def _statement(paramstyle: str) -> str:
    placeholder = "?" if paramstyle == "qmark" else "%s"
    # Only constant names are interpolated (the table's and COLUMNS); values are parameters.
    return (
        f"INSERT INTO {_EVENTS.name} ({', '.join(COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join([placeholder] * len(COLUMNS))}) "
        "ON CONFLICT (id) DO NOTHING"
    )


@functools.cache
def _converters(dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each column's bind processor for this dialect (None where values pass as they are)."""
    return tuple(
        # dialect_impl: SQLite's DateTime writes its own text format, microseconds included.
        _EVENTS.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in COLUMNS
    )


def insert_event_row(session: Session, row: Mapping[str, Any]) -> bool:
    """Insert `row` into `stripe_events` unless its id is stored; True if it was inserted."""
    if session.new or session.dirty or session.deleted:
        session.flush()  # as SQLAlchemy would before a statement: pending changes go first
    connection: Connection = session.connection()
    dialect = connection.dialect
    parameters = tuple(
        value if convert is None or value is None else convert(value)
        for value, convert in zip(
            (row[name] for name in COLUMNS), _converters(dialect), strict=True
        )
    )
    statement = _statement(dialect.paramstyle)
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement, parameters)
        return bool(cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            statement, parameters, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    finally:
        cursor.close()
