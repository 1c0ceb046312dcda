"""Record a Stripe event and apply its handler in ONE transaction; say what happened.

    new event          insert (the id is the primary key) + handler + commit  -> PROCESSED
    no handler         insert as `ignored`                                    -> IGNORED
    seen before        delivery_count + 1 only                                -> DUPLICATE
    stored as failed   handler again, marked processed                        -> REAPPLIED
    handler raised     roll back, then store `failed` + error separately      -> FAILED
    database trouble   nothing committed                                      -> UNAVAILABLE

Duplicates are decided by the primary key, never by a check before the insert: concurrent
deliveries of one event serialise on that key (PostgreSQL makes the second insert wait for
the first transaction), so the handler's side effects happen once. The returned `Outcome` is
the seam the web layer maps to a status code and counts in its metrics.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from processor.db import direct
from processor.db.models import StripeEvent
from processor.db.types import UTCDateTime
from processor.db.upsert import insert_ignoring_conflict, insert_many_ignoring_conflict
from processor.logs import scrub
from processor.webhooks.dispatch import Handler, handler_for
from processor.webhooks.envelope import Event

log = logging.getLogger(__name__)

# The database could not do its part: answer 503, Stripe retries, nothing was committed.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
SETTLED_STATUSES = ("processed", "ignored")
MAX_ERROR_LENGTH = 2000


_EVENTS = StripeEvent.__table__
# Static statements, values as parameters: SQLAlchemy compiles each once.
_COUNT_DELIVERY = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("p_id"))
    .values(
        delivery_count=_EVENTS.c.delivery_count + 1,
        last_received_at=bindparam("p_now", type_=UTCDateTime()),
    )
    .returning(_EVENTS.c.status)
)
_MARK_PROCESSED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("p_id"))
    .values(
        status="processed",
        processed_at=bindparam("p_now", type_=UTCDateTime()),
        error=None,
        attempt_count=_EVENTS.c.attempt_count + 1,
    )
)


class Outcome(enum.Enum):
    """What recording one event did; `acknowledged` ones are answered 2xx."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    REAPPLIED = "reapplied"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"

    @property
    def acknowledged(self) -> bool:
        return self not in (Outcome.FAILED, Outcome.UNAVAILABLE)


class HandlerFailed(Exception):
    """A handler raised; carries the original as `__cause__`."""


def record_event(
    sessions: sessionmaker[Session],
    event: Event,
    *,
    now: datetime,
    secret_index: int | None = None,
    source: str = "webhook",
) -> Outcome:
    """Store one delivery (or a reconciled event) and apply it at most once."""
    handler = handler_for(event.type)
    try:
        try:
            with sessions.begin() as session:
                return _record_and_apply(session, event, handler, now, secret_index, source)
        except HandlerFailed as failure:
            cause = failure.__cause__ or failure
            _log_failure(event, cause)
            with sessions.begin() as session:
                store_failure(
                    session, event, describe_error(cause), now=now, secret_index=secret_index,
                    source=source,
                )
            return Outcome.FAILED
    except UNAVAILABLE_ERRORS as exc:
        log.warning(
            "webhook %s not stored, database unavailable: %s", event.id, type(exc).__name__,
            extra={"event_id": event.id, "event_type": event.type},
        )
        return Outcome.UNAVAILABLE


def record_batch(
    session: Session,
    events: Sequence[tuple[Event, int | None]],
    *,
    now: datetime,
    source: str = "webhook",
) -> list[Outcome]:
    """Record several events (with their secret index) in the caller's one transaction.

    All the batch's event rows go in with one statement; then each new event's handler runs,
    in delivery order. A handler may thus see a later event of the batch already stored,
    as if it had arrived first: handlers are order-independent, so the end state is the same.
    An id delivered twice within the batch is inserted once and counted as a duplicate.

    Raises `HandlerFailed` if any handler raises: the caller then rolls the transaction back
    and records the events one by one with `record_event`, which stores that one as failed.
    Handlers almost never raise, so the common path pays for no savepoints.
    """
    handlers = [handler_for(event.type) for event, _secret_index in events]
    rows = [
        _settled_row(event, handler, now=now, secret_index=secret_index, source=source)
        for (event, secret_index), handler in zip(events, handlers, strict=True)
    ]
    new_ids = insert_many_ignoring_conflict(session, StripeEvent, rows, conflict_on="id")
    outcomes = []
    for (event, _secret_index), handler in zip(events, handlers, strict=True):
        inserted = event.id in new_ids
        new_ids.discard(event.id)  # a second delivery within the batch is a duplicate
        outcomes.append(_apply_delivery(session, event, handler, now, inserted=inserted))
    return outcomes


def reapply_event(
    sessions: sessionmaker[Session], event: Event, *, now: datetime, force: bool = False
) -> Outcome:
    """Run a stored event through its handler again (`replay`).

    A settled event (processed or ignored) is left alone unless `force`: its effects are in
    place, and running a failure twice would count it twice on its recovery case.
    """
    handler = handler_for(event.type)
    try:
        try:
            with sessions.begin() as session:
                status = session.execute(
                    select(StripeEvent.status).where(StripeEvent.id == event.id).with_for_update()
                ).scalar_one()
                if handler is None or (status in SETTLED_STATUSES and not force):
                    return Outcome.DUPLICATE
                _apply(session, event, handler, now)
                _mark_processed(session, event.id, now)
                return Outcome.REAPPLIED
        except HandlerFailed as failure:
            cause = failure.__cause__ or failure
            _log_failure(event, cause)
            with sessions.begin() as session:
                session.execute(
                    update(StripeEvent)
                    .where(StripeEvent.id == event.id)
                    .values(status="failed", error=describe_error(cause),
                            attempt_count=StripeEvent.attempt_count + 1)
                )
            return Outcome.FAILED
    except UNAVAILABLE_ERRORS:
        return Outcome.UNAVAILABLE


def _record_and_apply(
    session: Session,
    event: Event,
    handler: Handler | None,
    now: datetime,
    secret_index: int | None,
    source: str,
) -> Outcome:
    row = _settled_row(event, handler, now=now, secret_index=secret_index, source=source)
    inserted = insert_ignoring_conflict(session, StripeEvent, row, conflict_on=["id"])
    return _apply_delivery(session, event, handler, now, inserted=inserted)


def _settled_row(
    event: Event, handler: Handler | None, *, now: datetime, secret_index: int | None, source: str
) -> dict[str, Any]:
    # Inserted as already settled: if the handler raises, the whole transaction (row
    # included) rolls back, so a `processed` row is never visible without its effects.
    return _event_row(
        event,
        now=now,
        secret_index=secret_index,
        source=source,
        status="processed" if handler else "ignored",
        processed_at=now if handler else None,
        attempt_count=1 if handler else 0,
    )


def _apply_delivery(
    session: Session, event: Event, handler: Handler | None, now: datetime, *, inserted: bool
) -> Outcome:
    """After the event's row went in (`inserted`) or was found stored: apply it at most once."""
    if inserted:
        if handler is None:
            return Outcome.IGNORED
        _apply(session, event, handler, now)
        return Outcome.PROCESSED
    # Seen before. This UPDATE also takes the row lock, so two redeliveries of a failed
    # event cannot both re-apply it: the second sees the first one's `processed`.
    status = direct.execute(session, _COUNT_DELIVERY, {"p_id": event.id, "p_now": now}).scalar_one()
    if status in SETTLED_STATUSES or handler is None:
        return Outcome.DUPLICATE
    _apply(session, event, handler, now)
    _mark_processed(session, event.id, now)
    return Outcome.REAPPLIED


def _apply(session: Session, event: Event, handler: Handler, now: datetime) -> None:
    try:
        handler(session, event, now)
    except UNAVAILABLE_ERRORS:
        raise
    except Exception as exc:
        raise HandlerFailed(event.type) from exc


def _mark_processed(session: Session, event_id: str, now: datetime) -> None:
    direct.execute(session, _MARK_PROCESSED, {"p_id": event_id, "p_now": now})


def store_failure(
    session: Session,
    event: Event,
    error: str,
    *,
    now: datetime,
    secret_index: int | None,
    source: str,
) -> None:
    """Record that this delivery's handler raised, in a transaction of its own.

    A concurrent delivery may have processed the event meanwhile: its status then stands, and
    only this delivery is counted.
    """
    values = _event_row(
        event,
        now=now,
        secret_index=secret_index,
        source=source,
        status="failed",
        processed_at=None,
        attempt_count=1,
    )
    values["error"] = error
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    settled = StripeEvent.status.in_(SETTLED_STATUSES)
    statement = insert(StripeEvent).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "delivery_count": StripeEvent.delivery_count + 1,
                "attempt_count": StripeEvent.attempt_count + 1,
                "last_received_at": now,
                "status": case((settled, StripeEvent.status), else_="failed"),
                "error": case((settled, StripeEvent.error), else_=error),
                "payload": statement.excluded.payload,
                "payload_pruned_at": None,
            },
        )
    )


def _event_row(
    event: Event,
    *,
    now: datetime,
    secret_index: int | None,
    source: str,
    status: str,
    processed_at: datetime | None,
    attempt_count: int,
) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "api_version": event.api_version,
        "livemode": event.livemode,
        "object_id": event.object_id,
        "stripe_created_at": event.created,
        "received_at": now,
        "last_received_at": now,
        "processed_at": processed_at,
        "status": status,
        "error": None,
        "delivery_count": 1,
        "attempt_count": attempt_count,
        "secret_index": secret_index,
        "source": source,
        "payload": event.payload,
    }


def describe_error(exc: BaseException) -> str:
    """A short, scrubbed description for the `error` column (never SQL parameters)."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    text = f"{type(exc).__name__}: {exc}".strip()
    return scrub(text)[:MAX_ERROR_LENGTH]


def _log_failure(event: Event, exc: BaseException) -> None:
    log.warning(
        "webhook %s (%s) handler failed: %s",
        event.id,
        event.type,
        describe_error(exc),
        # A statement error's own text carries the bound parameters: keep it out of logs.
        exc_info=None if isinstance(exc, StatementError) else exc,
        extra={"event_id": event.id, "event_type": event.type},
    )
