"""Many rows in one statement: the webhook batch's writes, whatever the batch's size.

PostgreSQL gets the rows as one JSON document, unpacked by `json_populate_recordset` (typed by
the table's row type) or, for rows of no table, `json_to_recordset`:

    INSERT INTO t (a, b) SELECT r.a, r.b FROM json_populate_recordset(NULL::t, :rows) AS r

The rows cost one parameter, serialised by orjson in C and unpacked by PostgreSQL in C, and
the text is the same for one row or a thousand, so the driver prepares it once per connection
and PostgreSQL plans it once. A multi-row VALUES list would be new text for every batch size
(prepared again for each), and an executemany pays SQLAlchemy and the driver per row.

SQLite, in process, has no round trip to save: the single-row statement runs once per row
(executemany; with RETURNING, SQLAlchemy's multi-row VALUES), compiled once by sqlite3.
Callers add ON CONFLICT and RETURNING to the INSERT as to any other; an UPDATE reads the rows
from `row_source` (PostgreSQL: `UPDATE ... FROM json_to_recordset(...)`).

Writes to tables none of the others reads go together (`execute_together`, `execute_carrying`):
on PostgreSQL one statement, the others riding on the last as data-modifying CTEs, so a round
trip for all.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    CursorResult,
    Table,
    Text,
    TextClause,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.types import ARRAY, TypeEngine

from processor.db.upsert import dialect_insert

ROWS_PARAMETER = "rows"
ORDINALITY = "ordinality"  # a row's number in the document, and in each text column's array
KEYS_PARAMETER = "keys"
# A statement and its parameters: one of the writes `execute_together` sends.
Write = tuple[Any, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def insert_rows(
    dialect: str,
    table: Table,
    columns: Sequence[str],
    *,
    where: ColumnElement[Any] | TextClause | None = None,
    parameter: str = ROWS_PARAMETER,
    text_columns: Sequence[str] = (),
) -> Any:
    """`INSERT INTO table (columns)` of the rows given by `rows_parameters` (with the same
    `parameter` and `text_columns`: writes sent together need names of their own), built
    once; PostgreSQL's may carry a `where` condition on the rows' SELECT.

    On PostgreSQL each of `text_columns` (long text, such as a stored payload) travels as an
    array of its own beside the document, joined to it row by row: inside the document every
    quote of it would be escaped by orjson and unescaped by PostgreSQL's JSON parser, where an
    array of text goes as it is (binary, through asyncpg)."""
    if dialect != "postgresql":
        return dialect_insert(dialect, table)
    # Typed by the table's own row type, so the statement need not spell the columns' types.
    document = cast(bindparam(parameter, type_=Text()), JSON)
    rows = (
        func.json_populate_recordset(literal_column(f"NULL::{table.name}"), document)
        .table_valued(*columns, with_ordinality=ORDINALITY)
        .alias("r")
    )
    values = {name: rows.c[name] for name in columns}
    source: Any = rows
    for name in text_columns:
        array = bindparam(_array_parameter(parameter, name), type_=ARRAY(Text()))
        texts = (
            func.unnest(array)
            .table_valued(name, with_ordinality=ORDINALITY)
            .render_derived(name=f"r_{name}")
        )
        source = source.join(texts, texts.c[ORDINALITY] == rows.c[ORDINALITY])
        values[name] = texts.c[name]
    selected = select(*(values[name] for name in columns)).select_from(source)
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


def batch_keys(dialect: str, parameter: str = KEYS_PARAMETER) -> Any:
    """A one-column table (`value`) of the keys given by `keys_parameters`, to join or
    correlate on: one statement text for any number of keys."""
    if dialect == "postgresql":
        document = cast(bindparam(parameter, type_=Text()), JSON)
        return func.json_array_elements_text(document).table_valued("value").alias(parameter)
    return func.json_each(bindparam(parameter, type_=Text())).table_valued("value").alias(parameter)


def keys_parameters(keys: Sequence[str], parameter: str = KEYS_PARAMETER) -> dict[str, str]:
    return {parameter: orjson.dumps(list(keys)).decode()}


def rows_parameters(
    dialect: str,
    rows: Sequence[Mapping[str, Any]],
    parameter: str = ROWS_PARAMETER,
    text_columns: Sequence[str] = (),
) -> Any:
    """What carries `rows` (dicts by column name) to an `insert_rows` or `row_source` statement."""
    if dialect != "postgresql":
        return rows
    if not text_columns:
        return {parameter: orjson.dumps(rows, default=_time_subclass).decode()}
    in_document = [
        {name: value for name, value in row.items() if name not in text_columns} for row in rows
    ]
    parameters: dict[str, Any] = {
        parameter: orjson.dumps(in_document, default=_time_subclass).decode()
    }
    for name in text_columns:
        parameters[_array_parameter(parameter, name)] = [row[name] for row in rows]
    return parameters


def without_rows(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """PostgreSQL: `parameters` (of `rows_parameters`, `keys_parameters` and scalars) with no
    rows and no keys, for an execution of the same statement that writes nothing."""
    return {name: _emptied(value) for name, value in parameters.items()}


def _emptied(value: Any) -> Any:
    if isinstance(value, list):  # a text column's array
        return []
    if isinstance(value, str) and value.startswith("["):  # a JSON document of rows or keys
        return "[]"
    return value


def _array_parameter(parameter: str, column_name: str) -> str:
    return f"{parameter}_{column_name}"


def execute_together(connection: Connection, writes: Sequence[Write]) -> None:
    """Run `writes`, in order, none of which reads a table another one writes.

    PostgreSQL gets one statement: the last write carrying the others (`execute_carrying`).
    Elsewhere each runs on its own.
    """
    if not writes:
        return
    if connection.dialect.name != "postgresql":
        for statement, each in writes:
            connection.execute(statement, each)
        return
    *carried, (last, parameters) = writes
    execute_carrying(connection, last, parameters, carried)


def execute_carrying(
    connection: Connection, statement: Any, parameters: Any, carried: Sequence[Write]
) -> CursorResult[Any]:
    """PostgreSQL: run `statement` with the `carried` writes riding on it as data-modifying
    CTEs, each run to completion on the statement's snapshot; the statement's result. The
    writes' parameters and the statement's must have distinct names."""
    if not carried:
        return connection.execute(statement, parameters)
    together = parameters_together(parameters, *(more for _, more in carried))
    riders = tuple(write for write, _ in carried)
    return connection.execute(_carrying(riders, statement), together)


def parameters_together(*each: Any) -> dict[str, Any]:
    """The parameters of writes sent as one statement, which must have distinct names."""
    together: dict[str, Any] = {}
    for more in each:
        if not isinstance(more, Mapping) or together.keys() & more.keys():
            raise ValueError("writes sent together need parameters of distinct names")
        together.update(more)
    return together


@functools.cache
def _carrying(riders: tuple[Any, ...], statement: Any) -> Any:
    """One statement for each combination of writes, built once (and compiled once)."""
    for index, rider in enumerate(riders):
        statement = statement.add_cte(rider.cte(f"carried_{index}"))
    return statement


def refused_unless(condition: Any, reason: str) -> ColumnElement[bool]:
    """PostgreSQL: a value that is true when `condition` holds and otherwise fails the
    statement that selects it, naming `reason` (a cast of the reason to boolean: SQL has no
    RAISE), so that nothing the statement wrote stays. A subquery in `condition` runs the
    data-modifying CTE it reads first."""
    return cast(case((condition, literal("true")), else_=literal(reason)), Boolean)


def _time_subclass(value: Any) -> str:
    """orjson writes `datetime` itself; a subclass (freezegun's clock) is written the same way."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written to JSON")
