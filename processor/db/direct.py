"""Run a static Core statement on the DB-API cursor of the session's connection, compiled once.

Why: the webhook receiver runs a handful of statements per event, and SQLAlchemy's execution
path (execution context, events, result wrapping) costs several times what SQLite or psycopg
spend on a short statement. `execute` keeps SQLAlchemy's SQL, parameter handling and types —
the statement is compiled by SQLAlchemy for the connection's dialect, its parameters take the
statement's own values where the caller gives none and go through the columns' own bind
processors, result rows through their result processors — and drops only the per-call
machinery around the driver.

Statements that need more than that run through `Session.execute` unchanged: Python-side
column defaults to compute, expanding IN parameters, bind names the driver needs escaped.
Driver errors are re-raised as SQLAlchemy's, so callers (503 on `OperationalError`, rollback
on anything) see no difference.
"""

from __future__ import annotations

import copy
import functools
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]
PLAN_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class DirectResult:
    """What the driver reported: rows (processed, with attribute access) and the rowcount."""

    rows: Sequence[Any]
    rowcount: int

    def scalar(self) -> Any:
        """The first column of the first row, or None without rows."""
        return self.rows[0][0] if self.rows else None

    def one(self) -> Any:
        """The only row; raises as SQLAlchemy's `Result.one()` does otherwise."""
        if not self.rows:
            raise NoResultFound("No row was found when one was required")
        if len(self.rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self.rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def all(self) -> Sequence[Any]:
        return self.rows


_REQUIRED = object()  # a parameter the caller must give: the statement has no value of its own


@dataclass(frozen=True, slots=True)
class _Slot:
    """One value the driver receives: the caller's `key`, else the statement's own `default`."""

    name: str  # the bind name in the SQL text
    key: str
    default: Any
    convert: Processor | None  # the column type's converter for this dialect


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: bool  # a sequence in `slots` order (SQLite, psycopg's raw cursor), else by name
    # psycopg: the raw cursor, which takes `$n` placeholders and never parses the SQL
    cursor_class: type[Any] | None
    slots: tuple[_Slot, ...]
    row_type: Callable[..., Any] | None  # None: SQLAlchemy does not know the columns (text)
    result_processors: tuple[Processor | None, ...]


def execute(session: Session, statement: ClauseElement, parameters: Mapping[str, Any]) -> Any:
    """Run `statement` (built once, e.g. a module constant) with `parameters` in the session's
    transaction.

    Returns a `DirectResult`, or SQLAlchemy's own result where the statement needs its full
    machinery; both answer `scalar()`, `one()`, `all()` and `rowcount`.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()  # as SQLAlchemy would before a statement: pending changes go first
    connection: Connection = session.connection()
    plan = _plan(statement, connection.dialect, tuple(sorted(parameters)))
    if plan is None:
        return session.execute(statement, dict(parameters))  # type: ignore[call-overload]
    return _run(connection, plan, parameters)


def _arguments(plan: _Plan, parameters: Mapping[str, Any]) -> Any:
    """What SQLAlchemy's `construct_params` and bind processors make of `parameters`, in one
    pass, shaped for the driver."""
    values = []
    for slot in plan.slots:
        value = parameters.get(slot.key, slot.default)
        if value is _REQUIRED:
            raise InvalidRequestError(f"A value is required for bind parameter {slot.key!r}")
        if value is not None and slot.convert is not None:
            value = slot.convert(value)
        values.append(value)
    if plan.positional:
        return values
    return {slot.name: value for slot, value in zip(plan.slots, values, strict=True)}


def _run(connection: Connection, plan: _Plan, parameters: Mapping[str, Any]) -> DirectResult:
    arguments = _arguments(plan, parameters)
    dialect = connection.dialect
    dbapi_connection: Any = connection.connection.dbapi_connection
    cursor = plan.cursor_class(dbapi_connection) if plan.cursor_class else dbapi_connection.cursor()
    try:
        cursor.execute(plan.sql, arguments)
        rows = _rows(plan, cursor) if cursor.description is not None else ()
        return DirectResult(rows, cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            plan.sql, arguments, exc, dialect.loaded_dbapi.Error, dialect=dialect
        ) from exc
    finally:
        cursor.close()


def _rows(plan: _Plan, cursor: Any) -> list[Any]:
    raw = cursor.fetchall()
    if plan.row_type is None:  # textual SQL: the driver names the columns, values as they come
        row_type = _row_type(tuple(column[0] for column in cursor.description))
        return [row_type(*row) for row in raw]
    row_type, processors = plan.row_type, plan.result_processors
    return [
        row_type(
            *(value if p is None else p(value) for value, p in zip(row, processors, strict=True))
        )
        for row in raw
    ]


def _slots(compiled: SQLCompiler) -> tuple[_Slot, ...] | None:
    """The driver's values in its order; None if a parameter is computed at execution time."""
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    if any(bind.callable is not None for bind in binds.values()):
        return None
    # The columns' own converters (SQLAlchemy's, by bind name); datetime ones remember their
    # last value, one memory per converter, so a multi-row INSERT's rows share their column's.
    converters = dict(compiled._bind_processors)
    remembering: dict[int, Processor] = {}
    for name, convert in converters.items():
        if _is_datetime(binds[name].type):
            if id(convert) not in remembering:
                remembering[id(convert)] = _remembering_last(convert)
            converters[name] = remembering[id(convert)]
    order = compiled.positiontup if compiled.positional else list(binds)
    return tuple(
        _Slot(
            name=name,
            key=binds[name].key,
            default=_REQUIRED if binds[name].required else binds[name].value,
            convert=converters.get(name),
        )
        for name in order or ()
    )


def _is_datetime(type_: Any) -> bool:
    return isinstance(getattr(type_, "impl", type_), DateTime)


def _remembering_last(convert: Processor) -> Processor:
    """`convert`, answering at once when given the value it converted last.

    A batch of webhook events binds the same `now` in several columns of every event, and
    formatting a datetime for the driver costs more than the rest of a parameter's handling.
    Datetimes are immutable and the remembered one is kept alive, so the same object means
    the same value. The (value, result) pair is replaced whole, so threads may share it.
    """
    last: list[tuple[Any, Any]] = [(None, None)]

    def process(value: Any) -> Any:
        seen, result = last[0]
        if value is not seen:
            result = convert(value)
            last[0] = (value, result)
        return result

    return process


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _row_type(names: tuple[str, ...]) -> Callable[..., Any]:
    """A row class with attribute access and `_asdict()`, as SQLAlchemy's rows have."""
    return namedtuple("Row", names, rename=True)


def _raw_cursor_class() -> type[Any]:
    import psycopg  # only where psycopg is the driver: SQLite deployments never load it

    return psycopg.RawCursor


@functools.cache
def _numbered_twin(dialect: Dialect) -> Dialect:
    """`dialect`, compiling placeholders as PostgreSQL's own `$1, $2, ...`.

    psycopg turns `%(name)s` into `$n` by parsing the SQL on every execution of a statement
    longer than 4 KB or with over 50 parameters (it caches only smaller ones): for a batch's
    multi-row INSERT of event rows that parse cost more than the rest of the batch's SQL. Its
    raw cursor takes `$n` SQL as it is.
    """
    twin = copy.copy(dialect)
    twin.paramstyle = "numeric_dollar"
    twin.positional = True
    return twin


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    # The parameter names decide an INSERT's columns, as in SQLAlchemy's own execution.
    raw = dialect.driver == "psycopg"
    compiled = statement.compile(
        dialect=_numbered_twin(dialect) if raw else dialect, column_keys=list(keys)
    )
    assert isinstance(compiled, SQLCompiler)
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.escaped_bind_names
    ):
        return None
    slots = _slots(compiled)
    if slots is None:
        return None
    # SQLAlchemy's own record of the statement's columns: (key, name, objects, type) each.
    columns = compiled._result_columns
    return _Plan(
        sql=compiled.string,
        positional=compiled.positional,
        cursor_class=_raw_cursor_class() if raw else None,
        slots=slots,
        row_type=_row_type(tuple(c[0] for c in columns)) if columns else None,
        result_processors=tuple(
            c[3].dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ),
    )
