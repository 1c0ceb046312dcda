"""Record verified events: one transaction per batch, and isolation when a batch fails.

On PostgreSQL most batches are one round trip (`one_statement`); one it refuses,
or whose statement fails but for the database being unavailable, is written here in
transactions:

    batch commits                  each delivery gets its own outcome (see `apply`)
    database unavailable           every delivery UNAVAILABLE, nothing committed (503)
    lost a lock race (PostgreSQL)  the batch runs again
    any other database error       the batch is re-applied in halves until each delivery
                                   gets the answer it deserves on its own: alone, it is
                                   stored as failed (500), or, if even that cannot be
                                   stored, refused as UNSTORABLE (400), nothing written

"Unavailable" is decided by the SQLSTATE where the server sent one, so that both drivers give
one answer (psycopg's sync engine, and asyncpg's on the event loop, which calls most server
errors by one generic class):

    connection lost (SQLAlchemy invalidated it)      unavailable
    SQLSTATE class 08, 28, 40, 53, 55, 57, 58        unavailable (40: a lock race that kept
                                                     losing; 57: shutdown, cancelled)
    any other SQLSTATE (22 data, 23 integrity, ...)  this batch's data: split it
    no SQLSTATE: OperationalError, InterfaceError,   unavailable (no connection to be had;
      pool timeout, OSError                          asyncpg raises the socket's own error)
    anything else from SQLAlchemy                    split
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from processor.db.engine import in_transactions
from processor.webhooks.apply import (
    Delivery,
    Outcome,
    apply_events,
    describe_error,
    reapply_stored_event,
    store_failure,
)
from processor.webhooks.envelope import Event
from processor.webhooks.one_statement import apply_in_one_statement

log = logging.getLogger(__name__)

# The database could not do its part: answer 503, Stripe retries, nothing was committed.
# (Class 54, a program limit such as an index row too large, is the data's fault: split.)
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "28", "40", "53", "55", "57", "58"})
_UNAVAILABLE_WITHOUT_SQLSTATE = (
    OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, OSError
)
# What talking to the database raises: SQLAlchemy's errors, and asyncpg's socket errors.
DATABASE_ERRORS = (SQLAlchemyError, OSError)
LOCK_RACE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialisation failure
LOCK_RACE_ATTEMPTS = 3


def record_events(engine: Engine, deliveries: Sequence[Delivery], now: datetime) -> list[Outcome]:
    """Store and apply `deliveries` in one transaction; one outcome per delivery."""
    try:
        with engine.connect() as connection:
            if connection.dialect.name != "postgresql":
                return record_batch(connection, deliveries, now)
            return record_batch_at_once(connection, deliveries, now)
    except DATABASE_ERRORS as exc:  # no connection to be had
        if not database_unavailable(exc):
            raise
        return unavailable(deliveries, exc)


def record_batch_at_once(
    connection: Connection, deliveries: Sequence[Delivery], now: datetime
) -> list[Outcome]:
    """`record_batch` on PostgreSQL: the batch in one round trip (`one_statement`) where it
    can be; otherwise in transactions as `record_batch` writes it.

    The batcher's connections are in autocommit, through asyncpg, whose executemany is one
    transaction. Others (replay, reconcile: psycopg) are not, and the statement's executions
    run in a transaction, whatever the driver does with an executemany in autocommit."""
    try:
        outcomes = apply_in_one_statement(connection, deliveries, now=now)
    except DATABASE_ERRORS as exc:
        connection.rollback()  # the refused transaction (in autocommit: SQLAlchemy's own state)
        lost_a_race = isinstance(exc, DBAPIError) and _lost_a_lock_race(exc)
        if database_unavailable(exc) and not lost_a_race:
            return unavailable(deliveries, exc)
        # The transactions run a batch that lost a lock race again, and isolate the
        # delivery at fault, if one is.
        outcomes = None
    if outcomes is not None:
        return outcomes
    with in_transactions(connection):
        return record_batch(connection, deliveries, now)


def record_batch(
    connection: Connection, deliveries: Sequence[Delivery], now: datetime
) -> list[Outcome]:
    """`record_events` on a connection of the caller's, outside any transaction (each attempt
    and each half after a failure is a transaction of its own)."""
    try:
        return _commit_batch(connection, deliveries, now=now)
    except DATABASE_ERRORS as exc:
        if database_unavailable(exc):
            return unavailable(deliveries, exc)
        if len(deliveries) == 1:
            return [_store_alone_as_failed(connection, deliveries[0], exc, now=now)]
        half = len(deliveries) // 2
        return [
            *record_batch(connection, deliveries[:half], now),
            *record_batch(connection, deliveries[half:], now),
        ]


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not do its part, rather than that the data is at
    fault (see the module's docstring)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES
    return isinstance(exc, _UNAVAILABLE_WITHOUT_SQLSTATE)


def unavailable(deliveries: Sequence[Delivery], exc: BaseException) -> list[Outcome]:
    log.warning(
        "%d webhook(s) not stored, database unavailable: %s",
        len(deliveries), type(exc).__name__,
    )
    return [Outcome.UNAVAILABLE] * len(deliveries)


def record_event(
    engine: Engine,
    event: Event,
    *,
    now: datetime,
    secret_index: int | None = None,
    source: str = "webhook",
) -> Outcome:
    """Store and apply one event (a reconciled one, or a delivery outside the batcher)."""
    return record_events(engine, [Delivery(event, secret_index, source)], now)[0]


def reapply_event(engine: Engine, event: Event, *, now: datetime, force: bool = False) -> Outcome:
    """Run a stored event through its reducer again (`replay`); see `apply.reapply_stored_event`."""
    try:
        with engine.connect() as connection:
            try:
                with connection.begin():
                    return reapply_stored_event(connection, event, now=now, force=force)
            except DATABASE_ERRORS as exc:
                if database_unavailable(exc):
                    raise
                delivery = Delivery(event, None, "replay")
                return _store_alone_as_failed(connection, delivery, exc, now=now)
    except DATABASE_ERRORS as exc:
        if not database_unavailable(exc):
            raise
        return Outcome.UNAVAILABLE


def _commit_batch(
    connection: Connection, deliveries: Sequence[Delivery], *, now: datetime
) -> list[Outcome]:
    for attempt in range(1, LOCK_RACE_ATTEMPTS + 1):
        try:
            with connection.begin():
                return apply_events(connection, deliveries, now=now)
        except DBAPIError as exc:
            if not _lost_a_lock_race(exc) or attempt == LOCK_RACE_ATTEMPTS:
                raise
            log.info("webhook batch lost a lock race; running it again")
    raise AssertionError("unreachable")


def _store_alone_as_failed(
    connection: Connection, delivery: Delivery, cause: BaseException, *, now: datetime
) -> Outcome:
    event = delivery.event
    error = describe_error(cause)
    log.warning(
        "webhook %s (%s) could not be applied: %s", event.id, event.type, error,
        extra={"event_id": event.id, "event_type": event.type},
    )
    try:
        with connection.begin():
            store_failure(connection, delivery, error, now=now)
    except DATABASE_ERRORS as exc:
        if database_unavailable(exc):
            return Outcome.UNAVAILABLE
        log.warning(
            "webhook %s refused, the database cannot store it: %s", event.id, describe_error(exc),
            extra={"event_id": event.id, "event_type": event.type},
        )
        return Outcome.UNSTORABLE
    return Outcome.FAILED


def _lost_a_lock_race(exc: DBAPIError) -> bool:
    """PostgreSQL aborted the transaction to break a deadlock (or a serialisation conflict)."""
    return getattr(exc.orig, "sqlstate", None) in LOCK_RACE_SQLSTATES
