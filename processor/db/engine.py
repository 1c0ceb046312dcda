"""Engines and sessions: SQLite tuned for one process, PostgreSQL through psycopg 3 with a pool
(asyncpg on the event loop)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

AUTOCOMMIT = "AUTOCOMMIT"
SQLITE_BUSY_TIMEOUT_MS = 10_000
ASYNCPG_DEFAULT_CONNECT_TIMEOUT = 60.0  # seconds, asyncpg's own default


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Build the engine for `url` with the per-database settings this service relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def make_async_engine(url: URL, *, application_name: str, pool_size: int = 2) -> AsyncEngine:
    """PostgreSQL through asyncpg, for work that runs on the event loop (the webhook batches);
    the pool is checked like `make_engine`'s. `application_name` names the connections in
    `pg_stat_activity`.

    asyncpg rather than psycopg's async driver: a round trip costs it about a third less CPU
    in this process, and the batches are round trips (docs/performance.md). It prepares each
    statement once per connection: SQLAlchemy keeps those it executes, asyncpg those of an
    executemany (a webhook batch), of any size (it would leave one over 15 KB unnamed, to be
    parsed and planned at every run). asyncpg reads
    the same libpq URL (`sslmode`, `sslrootcert`, `passfile`, ...; parameters it does not know
    go to the server as settings, `options` included), all but `connect_timeout`, translated
    here."""
    dsn, timeout = asyncpg_dsn(url)

    async def connect() -> Any:
        return await asyncpg.connect(
            dsn,
            timeout=timeout,
            server_settings={"application_name": application_name},
            max_cacheable_statement_size=0,  # no limit
        )

    return create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def asyncpg_dsn(url: URL) -> tuple[str, float]:
    """The libpq URL asyncpg parses, and libpq's `connect_timeout` as asyncpg's `timeout`."""
    query = dict(url.query)
    timeout = query.pop("connect_timeout", None)
    seconds = float(timeout) if isinstance(timeout, str) and timeout.strip() else 0.0
    dsn = url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
    # libpq waits forever at 0 (or unset); asyncpg's own default is a minute.
    return dsn, seconds if seconds > 0 else ASYNCPG_DEFAULT_CONNECT_TIMEOUT


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # FULL syncs the WAL at every commit: a committed charge, case or email survives a power
    # loss, not only a crash of the process. Writes here are few; the webhook writer batches.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # Take the write lock up front: two writers upgrading read locks would deadlock instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def in_transactions(connection: Connection) -> Iterator[Connection]:
    """`connection`, lent to code that begins transactions of its own: one kept in autocommit
    (where `begin()` sends nothing) leaves it meanwhile, and is in autocommit again after."""
    if connection.get_execution_options().get("isolation_level") != AUTOCOMMIT:
        yield connection
        return
    if connection.in_transaction():
        connection.commit()  # SQLAlchemy's own, begun by a statement in autocommit
    connection.execution_options(isolation_level=connection.default_isolation_level)
    try:
        yield connection
    finally:
        connection.execution_options(isolation_level=AUTOCOMMIT)
