"""Apply a batch of verified events in the caller's transaction: store each once, reduce, write.

    new event            inserted settled, its changes written             -> PROCESSED
    no reducer           inserted as `ignored`                             -> IGNORED
    reducer raised       inserted as `failed` with the error, nothing else -> FAILED
    seen, settled        delivery_count + 1 only                           -> DUPLICATE
    seen, failed         changes written, marked processed                 -> REAPPLIED

Duplicates are decided by the primary key, never by a check before the insert: concurrent
deliveries of one event serialise on that key (PostgreSQL makes the second insert wait for
the first transaction), so its changes are written once. An id repeated within the batch is
inserted once and its repeats are duplicates. The batch's changes are merged per row and
written with one statement per table (see each table's module for its merge rule), so a
batch costs a handful of statements, whatever its size.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update
from sqlalchemy.exc import StatementError

from processor.charging.settlement import IntentOutcome, settlement_write
from processor.checkout.attempts import (
    Adoption,
    AttemptChange,
    adopt_orphan_attempts,
    attempt_upsert,
    merge_attempts,
)
from processor.checkout.generated import link_generated_methods
from processor.checkout.methods import MethodChange, method_upsert
from processor.db.bulk import Write, insert_rows, rows_parameters
from processor.db.locks import KEYS_PARAMETER as LOCK_KEYS_PARAMETER
from processor.db.locks import lock_keys_until_commit, locks_taken_first
from processor.db.models import StripeEvent, table_of
from processor.db.types import UTCDateTime
from processor.db.upsert import dialect_insert
from processor.logs import scrub
from processor.recovery.cases import PaymentFailure, newest_failures, write_case_changes
from processor.webhooks.envelope import Event
from processor.webhooks.reducers import REDUCERS, Change

log = logging.getLogger(__name__)

SETTLED_STATUSES = ("processed", "ignored")
DIALECTS = ("sqlite", "postgresql")
MAX_ERROR_LENGTH = 2000


class Outcome(enum.Enum):
    """What recording one delivery did; `acknowledged` ones are answered 2xx."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    REAPPLIED = "reapplied"
    FAILED = "failed"  # stored with its error; answered 500 so that Stripe retries
    UNAVAILABLE = "unavailable"  # nothing stored: the database could not do its part
    UNSTORABLE = "unstorable"  # nothing stored: the database cannot hold this event

    @property
    def acknowledged(self) -> bool:
        return self in (Outcome.PROCESSED, Outcome.IGNORED, Outcome.DUPLICATE, Outcome.REAPPLIED)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified event and where it came from."""

    event: Event
    secret_index: int | None = None  # which webhook secret signed it
    source: str = "webhook"


_EVENTS = table_of(StripeEvent)
# An event's row: Stripe's id and `created`, which a redelivery repeats (see StripeEvent).
EVENT_KEY = ["id", "stripe_created_at"]
_NOW = bindparam("p_now", type_=UTCDateTime())
_COUNT_DELIVERIES = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(bindparam("p_ids", expanding=True)))
    .values(
        delivery_count=_EVENTS.c.delivery_count + bindparam("p_count"),
        last_received_at=_NOW,
    )
    .returning(_EVENTS.c.id, _EVENTS.c.status)
)
_MARK_PROCESSED = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(bindparam("p_ids", expanding=True)))
    .values(
        status="processed", processed_at=_NOW, error=None, attempt_count=_EVENTS.c.attempt_count + 1
    )
)
_MARK_FAILED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("p_id"))
    .values(status="failed", error=bindparam("p_error"), attempt_count=_EVENTS.c.attempt_count + 1)
)
EVENT_COLUMNS = (
    "id", "type", "api_version", "livemode", "object_id", "stripe_created_at", "received_at",
    "last_received_at", "processed_at", "status", "error", "delivery_count", "attempt_count",
    "secret_index", "source", "payload",
)
EVENT_TEXTS = ("payload",)  # beside the rows' JSON document (see `db.bulk.insert_rows`)


def _insert_events_statement(dialect: str) -> Any:
    """The batch's events, stored once each. On PostgreSQL the statement first takes the
    batch's advisory locks (`lock_keys`); SQLite runs one writer at a time and needs none."""
    where = locks_taken_first() if dialect == "postgresql" else None
    return (
        insert_rows(dialect, _EVENTS, EVENT_COLUMNS, where=where, text_columns=EVENT_TEXTS)
        .on_conflict_do_nothing(index_elements=EVENT_KEY)
        .returning(_EVENTS.c.id)
    )


_INSERT_EVENTS = {dialect: _insert_events_statement(dialect) for dialect in DIALECTS}
_STATUS_FOR_UPDATE = select(_EVENTS.c.status).where(_EVENTS.c.id == bindparam("p_id"))


def apply_events(
    connection: Connection, deliveries: Sequence[Delivery], *, now: datetime
) -> list[Outcome]:
    """Store and apply `deliveries` in the caller's transaction; one outcome per delivery."""
    first: dict[str, Delivery] = {}
    repeats: Counter[str] = Counter()
    for delivery in deliveries:
        if delivery.event.id in first:
            repeats[delivery.event.id] += 1
        else:
            first[delivery.event.id] = delivery
    reduced, errors = reduce_events(first)
    # Every lock the batch may need, taken as its events are stored: before any row is written.
    locks = lock_keys(change for changes in reduced.values() for change in changes)
    new_ids = _insert_events(connection, first, reduced, errors, repeats, locks, now=now)
    seen = _count_redeliveries(connection, first.keys() - new_ids, repeats, now=now)
    reapplied = [event_id for event_id, status in seen.items()
                 if status not in SETTLED_STATUSES and event_id in reduced]
    failed_again = [event_id for event_id, status in seen.items()
                    if status not in SETTLED_STATUSES and event_id in errors]
    if reapplied:
        connection.execute(_MARK_PROCESSED, {"p_ids": sorted(reapplied), "p_now": now})
    if failed_again:
        connection.execute(
            _MARK_FAILED,
            [{"p_id": event_id, "p_error": errors[event_id]} for event_id in failed_again],
        )
    write_locked_changes(
        connection,
        (change for event_id in (*sorted(new_ids), *reapplied)
         for change in reduced.get(event_id, ())),
        now=now,
    )

    first_outcome: dict[str, Outcome] = {}
    for event_id in first:
        if event_id in new_ids:
            first_outcome[event_id] = new_event_outcome(event_id, reduced, errors)
        elif event_id in failed_again:
            first_outcome[event_id] = Outcome.FAILED
        elif event_id in reapplied:
            first_outcome[event_id] = Outcome.REAPPLIED
        else:
            first_outcome[event_id] = Outcome.DUPLICATE
    return _answer_each(deliveries, first_outcome)


def new_event_outcome(
    event_id: str, reduced: dict[str, tuple[Change, ...]], errors: dict[str, str]
) -> Outcome:
    """The outcome of an event stored for the first time by the batch."""
    if event_id in errors:
        return Outcome.FAILED
    return Outcome.PROCESSED if event_id in reduced else Outcome.IGNORED


def reduce_events(
    first: dict[str, Delivery],
) -> tuple[dict[str, tuple[Change, ...]], dict[str, str]]:
    """Each event's changes by id, and the error of each event whose reducer raised."""
    reduced: dict[str, tuple[Change, ...]] = {}
    errors: dict[str, str] = {}
    for event_id, delivery in first.items():
        reducer = REDUCERS.get(delivery.event.type)
        if reducer is None:
            continue
        try:
            reduced[event_id] = reducer(delivery.event)
        except Exception as exc:  # a reducer's bug or a malformed object: this event alone
            errors[event_id] = describe_error(exc)
            _log_failure(delivery.event, exc)
    return reduced, errors


def _answer_each(
    deliveries: Sequence[Delivery], first_outcome: dict[str, Outcome]
) -> list[Outcome]:
    """One outcome per delivery: a second delivery of an event within the batch is a
    duplicate of the first (unless the event failed: it failed for both)."""
    outcomes = []
    answered: set[str] = set()
    for delivery in deliveries:
        event_id = delivery.event.id
        outcome = first_outcome[event_id]
        if event_id in answered and outcome is not Outcome.FAILED:
            outcome = Outcome.DUPLICATE
        answered.add(event_id)
        outcomes.append(outcome)
    return outcomes


def _insert_events(
    connection: Connection,
    first: dict[str, Delivery],
    reduced: dict[str, tuple[Change, ...]],
    errors: dict[str, str],
    repeats: Counter[str],
    locks: list[str],
    *,
    now: datetime,
) -> set[str]:
    """One multi-row INSERT of the batch's new events, settled as they will commit; their ids.

    On PostgreSQL it first takes the advisory `locks`. Rows go in sorted by id, so two
    transactions inserting overlapping events lock them in the same order and never deadlock
    over them.
    """
    rows = new_event_rows(first, reduced, errors, repeats, now=now)
    dialect = connection.dialect.name
    parameters = rows_parameters(dialect, rows, text_columns=EVENT_TEXTS)
    if dialect == "postgresql":
        parameters[LOCK_KEYS_PARAMETER] = sorted(set(locks))
    return {event_id for (event_id,) in connection.execute(_INSERT_EVENTS[dialect], parameters)}


def new_event_rows(
    first: dict[str, Delivery],
    reduced: dict[str, tuple[Change, ...]],
    errors: dict[str, str],
    repeats: Counter[str],
    *,
    now: datetime,
) -> list[dict[str, Any]]:
    """The batch's events as rows for `stripe_events`, settled as they will commit if new."""
    rows = []
    for event_id in sorted(first):
        if event_id in errors:
            status, error = "failed", errors[event_id]
        else:
            status, error = ("processed" if event_id in reduced else "ignored"), None
        row = event_row(first[event_id], now=now, status=status, error=error)
        row["delivery_count"] = 1 + repeats[event_id]
        rows.append(row)
    return rows


def _count_redeliveries(
    connection: Connection, event_ids: Iterable[str], repeats: Counter[str], *, now: datetime
) -> dict[str, str]:
    """Count the deliveries of events stored before; their stored status by id."""
    by_count: dict[int, list[str]] = {}
    for event_id in sorted(event_ids):
        by_count.setdefault(1 + repeats[event_id], []).append(event_id)
    statuses: dict[str, str] = {}
    for count, ids in by_count.items():
        result = connection.execute(
            _COUNT_DELIVERIES, {"p_ids": ids, "p_count": count, "p_now": now}
        )
        statuses.update({event_id: status for event_id, status in result})
    return statuses


def lock_keys(changes: Iterable[Change]) -> list[str]:
    """The advisory locks that writing `changes` needs (see `db.locks`): ConfirmationTokens
    whose lost answers may be adopted, set-up attempts that generated a method (the
    SetupIntent's events and the method's `attached` may be applied by two workers at once,
    and each must see the other's row), and PaymentIntents whose outcomes are recorded."""
    keys: list[str] = []
    for change in changes:
        if isinstance(change, (AttemptChange, MethodChange)):
            generating = _generating_attempt(change)
            if generating:
                keys.append(generating)
            if (
                isinstance(change, AttemptChange)
                and change.confirmation_token_id is not None
                and change.customer_id is not None
            ):
                keys.append(change.confirmation_token_id)
        else:
            keys.append(change.payment_intent_id)
    return keys


def _generating_attempt(change: AttemptChange | MethodChange) -> str | None:
    """The set-up attempt whose generated method this change links, if any."""
    if isinstance(change, AttemptChange):
        return change.latest_attempt_id if change.payment_method_type else None
    return (change.details or {}).get("generated_from_attempt") or None


def write_changes(connection: Connection, changes: Sequence[Change], *, now: datetime) -> None:
    """Take the locks `changes` need, then write them (`write_locked_changes`)."""
    lock_keys_until_commit(connection, lock_keys(changes))
    write_locked_changes(connection, changes, now=now)


def write_locked_changes(
    connection: Connection, changes: Iterable[Change], *, now: datetime
) -> None:
    """Write what a batch's reducers intend, one statement per table; the caller holds the
    locks of `lock_keys(changes)`."""
    planned = plan_writes(connection.dialect.name, changes, now=now)
    adopt_orphan_attempts(connection, planned.adoptions, now=now)
    write_case_changes(
        connection, planned.failures, planned.settled, now=now, carried=planned.carried
    )
    if planned.links_generated:
        link_generated_methods(connection, now=now)


@dataclass(frozen=True, slots=True)
class PlannedWrites:
    """What a batch's changes write, worked out before anything is sent (`plan_writes`)."""

    failures: list[PaymentFailure]
    settled: list[str]  # PaymentIntents whose success or cancellation the batch records
    # Writes of tables the cases' statement neither reads nor writes, sent along with it: on
    # PostgreSQL one round trip writes them all. (The settlement reads the cases' newest
    # failure.)
    carried: list[Write]
    adoptions: list[Adoption]  # to run before the writes (`adopt_orphan_attempts`)
    links_generated: bool  # a method generated by a set-up: `link_generated_methods` after


def plan_writes(dialect: str, changes: Iterable[Change], *, now: datetime) -> PlannedWrites:
    """Sort a batch's changes by table and merge each table's rows."""
    attempts: list[AttemptChange] = []
    methods: list[MethodChange] = []
    failures: list[PaymentFailure] = []
    outcomes: list[IntentOutcome] = []
    for change in changes:
        if isinstance(change, AttemptChange):
            attempts.append(change)
        elif isinstance(change, MethodChange):
            methods.append(change)
        elif isinstance(change, PaymentFailure):
            failures.append(change)
        else:
            outcomes.append(change)
    attempt_rows, adoptions = merge_attempts(attempts, now=now)
    carried = [
        attempt_upsert(dialect, attempt_rows) if attempt_rows else None,
        method_upsert(dialect, methods, now=now),
        settlement_write(dialect, outcomes, now=now, newest_failures=newest_failures(dialect)),
    ]
    generated: list[AttemptChange | MethodChange] = [*attempts, *methods]
    return PlannedWrites(
        failures=failures,
        settled=[o.payment_intent_id for o in outcomes if o.outcome != "failed"],
        carried=[write for write in carried if write is not None],
        adoptions=adoptions,
        links_generated=any(_generating_attempt(change) for change in generated),
    )


def reapply_stored_event(
    connection: Connection, event: Event, *, now: datetime, force: bool
) -> Outcome:
    """Run a stored event through its reducer again (`replay`), in the caller's transaction.

    A settled event is left alone unless `force`: its effects are in place. Forcing is safe:
    every merge rule is idempotent, so a failure applied twice still counts once.
    """
    reducer = REDUCERS.get(event.type)
    status = connection.execute(
        _STATUS_FOR_UPDATE.with_for_update(), {"p_id": event.id}
    ).scalar_one()
    if reducer is None or (status in SETTLED_STATUSES and not force):
        return Outcome.DUPLICATE
    try:
        changes = reducer(event)
    except Exception as exc:
        _log_failure(event, exc)
        connection.execute(_MARK_FAILED, {"p_id": event.id, "p_error": describe_error(exc)})
        return Outcome.FAILED
    # Marked first: the case rule reads which closing events are processed.
    connection.execute(_MARK_PROCESSED, {"p_ids": [event.id], "p_now": now})
    write_changes(connection, changes, now=now)
    return Outcome.REAPPLIED


def store_failure(connection: Connection, delivery: Delivery, error: str, *, now: datetime) -> None:
    """Record that this delivery could not be applied, in a transaction of its own.

    A concurrent delivery may have processed the event meanwhile: its status then stands, and
    only this delivery is counted.
    """
    insert = dialect_insert(connection.dialect.name, _EVENTS)
    stored, new = _EVENTS.c, insert.excluded
    settled = stored.status.in_(SETTLED_STATUSES)
    statement = insert.values(event_row(delivery, now=now, status="failed", error=error))
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=EVENT_KEY,
            set_={
                "delivery_count": stored.delivery_count + 1,
                "attempt_count": stored.attempt_count + 1,
                "last_received_at": new.last_received_at,
                "status": case((settled, stored.status), else_="failed"),
                "error": case((settled, stored.error), else_=new.error),
                "payload": new.payload,
            },
        )
    )


def event_row(
    delivery: Delivery, *, now: datetime, status: str, error: str | None
) -> dict[str, Any]:
    """The `stripe_events` row of a delivery, as it will be stored with `status`."""
    event = delivery.event
    applied = status == "processed"
    return {
        "id": event.id,
        "type": event.type,
        "api_version": event.api_version,
        "livemode": event.livemode,
        "object_id": event.object_id,
        "stripe_created_at": event.created,
        "received_at": now,
        "last_received_at": now,
        "processed_at": now if applied else None,
        "status": status,
        "error": error,
        "delivery_count": 1,
        "attempt_count": 0 if status == "ignored" else 1,
        "secret_index": delivery.secret_index,
        "source": delivery.source,
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
        "webhook %s (%s) could not be applied: %s",
        event.id,
        event.type,
        describe_error(exc),
        # A statement error's own text carries the bound parameters: keep it out of logs.
        exc_info=None if isinstance(exc, StatementError) else exc,
        extra={"event_id": event.id, "event_type": event.type},
    )
