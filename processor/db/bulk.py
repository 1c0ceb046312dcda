"""Many rows in one statement: the webhook batch's writes, whatever the batch's size.

PostgreSQL gets the rows as one JSON document, unpacked by `json_populate_recordset` (typed by
the table's row type) or, for rows of no table, `json_to_recordset`:

    INSERT INTO t (a, b) SELECT r.a, r.b FROM json_populate_recordset(NULL::t, :rows) AS r

The rows cost one parameter, serialised by orjson in C and unpacked by PostgreSQL in C, and
the text is the same for one row or a thousand, so psycopg parses it once and PostgreSQL plans
it once. A multi-row VALUES list would be new text for every batch size (psycopg parses long
statements again on every run), and an executemany pays SQLAlchemy and the driver per row.

SQLite, in process, has no round trip to save: the single-row statement runs once per row
(executemany; with RETURNING, SQLAlchemy's multi-row VALUES), compiled once by sqlite3.
Callers add ON CONFLICT and RETURNING to the INSERT as to any other; an UPDATE reads the rows
from `row_source` (PostgreSQL: `UPDATE ... FROM json_to_recordset(...)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Table,
    Text,
    TextClause,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
)
from sqlalchemy.types import TypeEngine

from processor.db.upsert import dialect_insert

ROWS_PARAMETER = "rows"
KEYS_PARAMETER = "keys"


def insert_rows(
    dialect: str,
    table: Table,
    columns: Sequence[str],
    *,
    where: ColumnElement[Any] | TextClause | None = None,
) -> Any:
    """`INSERT INTO table (columns)` of the rows given by `rows_parameters`, built once;
    PostgreSQL's may carry a `where` condition on the rows' SELECT."""
    if dialect != "postgresql":
        return dialect_insert(dialect, table)
    # Typed by the table's own row type, so the statement need not spell the columns' types
    # (shorter text: see DRIVER_CACHED_STATEMENT_BYTES in the webhook tests).
    document = cast(bindparam(ROWS_PARAMETER, type_=Text()), JSON)
    rows = (
        func.json_populate_recordset(literal_column(f"NULL::{table.name}"), document)
        .table_valued(*columns)
        .alias("r")
        .c
    )
    selected = select(*(rows[name] for name in columns))
    if where is not None:
        selected = selected.where(where)
    return dialect_insert(dialect, table).from_select(list(columns), selected)


def row_source(
    dialect: str, columns: Mapping[str, TypeEngine[Any]], parameter: str = ROWS_PARAMETER
) -> Any:
    """Each column of the rows given by `rows_parameters`, by name, for a statement to read:
    on PostgreSQL a column of `json_to_recordset` (an UPDATE that reads one runs once, FROM
    it), elsewhere a parameter of the single-row statement."""
    if dialect != "postgresql":
        return {name: bindparam(name, type_=type_) for name, type_ in columns.items()}
    document = cast(bindparam(parameter, type_=Text()), JSON)
    return (
        func.json_to_recordset(document)
        .table_valued(*(column(name, type_) for name, type_ in columns.items()))
        .render_derived(name="r", with_types=True)
        .c
    )


def batch_keys(dialect: str) -> Any:
    """A one-column table (`value`) of the keys given by `keys_parameters`, to join or
    correlate on: one statement text for any number of keys."""
    if dialect == "postgresql":
        document = cast(bindparam(KEYS_PARAMETER, type_=Text()), JSON)
        return func.json_array_elements_text(document).table_valued("value").alias("k")
    return func.json_each(bindparam(KEYS_PARAMETER, type_=Text())).table_valued("value").alias("k")


def keys_parameters(keys: Sequence[str]) -> dict[str, str]:
    return {KEYS_PARAMETER: orjson.dumps(list(keys)).decode()}


def rows_parameters(
    dialect: str, rows: Sequence[Mapping[str, Any]], parameter: str = ROWS_PARAMETER
) -> Any:
    """What carries `rows` (dicts by column name) to an `insert_rows` or `row_source` statement."""
    if dialect != "postgresql":
        return rows
    return {parameter: orjson.dumps(rows, default=_time_subclass).decode()}


def _time_subclass(value: Any) -> str:
    """orjson writes `datetime` itself; a subclass (freezegun's clock) is written the same way."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written to JSON")
