"""Recovery cases: one per failed off-session PaymentIntent, opened by whichever of the charger's
402 or the `payment_intent.payment_failed` webhook comes first, and closed by the outcome.

The merge rule, written once in Python (`merge_failures`, for the failures of one batch) and once
in SQL (the upsert's conflict clause, for the stored row), is commutative and idempotent:

- the newest failure, by (time, charge id), names the kind, the error and the method;
- `opened_at` is the earliest failure; a failure never reopens a closed case;
- `failure_count` counts attempts; an attempt (charge id) reported again changes nothing (the
  402 and the webhook report the same one; a failed authentication makes no new charge);
- a case whose PaymentIntent has a processed `payment_intent.succeeded` or `.canceled` event is
  closed (recovered or canceled) at that event's time, whichever arrived first;
- the first notification is written exactly once per case, canceled if the case is closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session

from processor.db.bulk import (
    Write,
    batch_keys,
    execute_carrying,
    execute_together,
    insert_rows,
    keys_parameters,
    rows_parameters,
)
from processor.db.locks import lock_keys_until_commit
from processor.db.models import Notification, RecoveryCase, StripeEvent, table_of
from processor.db.types import UTCDateTime
from processor.db.upsert import dialect_insert, earliest
from processor.recovery.retries import cancel_retries

AUTHENTICATION_REQUIRED = "authentication_required"
PAYMENT_METHOD_REQUIRED = "payment_method_required"
INITIAL_NOTIFICATION = "initial"
REMINDER_NOTIFICATION = "reminder"
CLOSING_EVENTS = {"payment_intent.succeeded": "recovered", "payment_intent.canceled": "canceled"}


@dataclass(frozen=True, slots=True)
class PaymentFailure:
    """What we know about one failed attempt at a PaymentIntent."""

    payment_intent_id: str
    customer_id: str | None
    payment_method_id: str | None
    amount: int
    currency: str
    code: str | None
    decline_code: str | None
    message: str | None
    failed_at: datetime
    charge_id: str | None = None  # the attempt (`ch_…`): lets the 402 and the webhook dedupe

    @property
    def recency(self) -> tuple[datetime, str]:
        """The order in which failures of one PaymentIntent supersede each other."""
        return self.failed_at, self.charge_id or ""


@dataclass(slots=True)
class MergedFailures:
    """The failures of one PaymentIntent within a batch, folded into one row."""

    newest: PaymentFailure
    opened_at: datetime
    attempts: set[str] = field(default_factory=set)  # charge ids
    unnamed_attempts: int = 0  # failures without a charge id: each one counts

    @property
    def failure_count(self) -> int:
        return len(self.attempts) + self.unnamed_attempts


def classify_decline(code: str | None, decline_code: str | None) -> str:
    """The bank wants the customer present, or the method itself must change."""
    if AUTHENTICATION_REQUIRED in (code, decline_code):
        return AUTHENTICATION_REQUIRED
    return PAYMENT_METHOD_REQUIRED


def notification_dedup_key(case_id: int, sequence: int) -> str:
    return f"case:{case_id}:{sequence}"


def merge_failures(failures: Iterable[PaymentFailure]) -> dict[str, MergedFailures]:
    """Fold failures per PaymentIntent; the result does not depend on their order.

    An attempt (charge id) reported more than once keeps its first report, as the stored row
    does: a later report of the same attempt (the 402, then the webhook; or a failed
    authentication, which makes no new charge) changes nothing.
    """
    first_reports: dict[tuple[str, str], PaymentFailure] = {}
    unnamed: list[PaymentFailure] = []
    for failure in failures:
        if failure.charge_id is None:
            unnamed.append(failure)
            continue
        key = (failure.payment_intent_id, failure.charge_id)
        held = first_reports.get(key)
        if held is None or _precedence(failure) < _precedence(held):
            first_reports[key] = failure
    merged: dict[str, MergedFailures] = {}
    for failure in sorted([*first_reports.values(), *unnamed], key=_precedence):
        folded = merged.get(failure.payment_intent_id)
        if folded is None:
            folded = merged[failure.payment_intent_id] = MergedFailures(failure, failure.failed_at)
        elif failure.payment_method_id is None and folded.newest.payment_method_id is not None:
            folded.newest = replace(failure, payment_method_id=folded.newest.payment_method_id)
        else:
            folded.newest = failure  # in order of precedence: the last one is the newest
        if failure.charge_id is None:
            folded.unnamed_attempts += 1
        else:
            folded.attempts.add(failure.charge_id)
    return merged


def _precedence(failure: PaymentFailure) -> tuple[Any, ...]:
    """`recency`, then every reported fact: two reports of one attempt merge the same way
    in any order."""
    return (*failure.recency, failure.code or "", failure.decline_code or "",
            failure.message or "", failure.payment_method_id or "")


_CASES = table_of(RecoveryCase)
_NOTIFICATIONS = table_of(Notification)
_EVENTS = table_of(StripeEvent)
_NEWEST_FIELDS = (
    "kind", "error_code", "decline_code", "failure_message", "last_failure_at", "last_charge_id",
)


_ROW_COLUMNS = (
    "payment_intent_id", "customer_id", "payment_method_id", "kind", "status", "amount",
    "currency", "error_code", "decline_code", "failure_message", "failure_count", "opened_at",
    "last_failure_at", "last_charge_id", "updated_at",
)


def _upsert_cases(dialect: str) -> Any:
    """The SQL half of the merge rule: fold a batch's row for an intent into the stored one."""
    insert = insert_rows(dialect, _CASES, _ROW_COLUMNS)
    stored, new = _CASES.c, insert.excluded
    newer = or_(
        new.last_failure_at > stored.last_failure_at,
        and_(
            new.last_failure_at == stored.last_failure_at,
            func.coalesce(new.last_charge_id, "") >= func.coalesce(stored.last_charge_id, ""),
        ),
    )
    same_attempt = and_(
        new.last_charge_id.is_not(None), new.last_charge_id == stored.last_charge_id
    )
    return insert.on_conflict_do_update(
        index_elements=["payment_intent_id"],
        set_={
            **{name: case((newer, new[name]), else_=stored[name]) for name in _NEWEST_FIELDS},
            "payment_method_id": case(
                (newer, func.coalesce(new.payment_method_id, stored.payment_method_id)),
                else_=stored.payment_method_id,
            ),
            "opened_at": earliest(stored.opened_at, new.opened_at),
            "failure_count": stored.failure_count + new.failure_count,
            "updated_at": new.updated_at,
        },
        where=~same_attempt,  # a later report of the stored attempt changes nothing
    )


def _unindexed(column: Any) -> Any:
    """The column in a form no index matches: keeps the planner on the key's own index
    (the object's id) whatever the table's statistics say, as for a fresh table."""
    return func.coalesce(column, "")


def _known_outcomes(dialect: str, written: Any = None) -> Any:
    """For each key (a PaymentIntent id): its open case (`open_case`), and the time and type
    of its processed closing event (`closed_at`, `closing_type`). Aggregates, not EXISTS, so
    that each stays an index lookup per key (PostgreSQL may turn an EXISTS into a hash of the
    whole table).

    PostgreSQL reads the cases' upsert from `written`, a CTE of the same statement (RETURNING
    payment_intent_id, id and status): each key's written case comes first (`case_id`,
    `case_status`), and the query reads the cases it opened from there, since they are not in
    the snapshot the statement reads.
    """
    keys = batch_keys(dialect)
    created = _EVENTS.c.stripe_created_at
    closing = and_(
        _EVENTS.c.object_id == keys.c.value,
        # Not IN: SQLAlchemy renders an IN list into the statement again at every run.
        or_(*(_unindexed(_EVENTS.c.type) == event_type for event_type in CLOSING_EVENTS)),
        _unindexed(_EVENTS.c.status) == "processed",
    )
    open_case = (
        select(_CASES.c.id)
        .where(_CASES.c.payment_intent_id == keys.c.value, _unindexed(_CASES.c.status) == "open")
        .scalar_subquery()
    )
    # Not min() of the bare column: PostgreSQL would read it as the first row along the
    # `stripe_created_at` index that matches, a walk through every event on a table without
    # statistics yet.
    closed_at = func.min(func.coalesce(created, created)).label("closed_at")
    # A PaymentIntent that succeeded cannot be canceled, nor the reverse: either type.
    closing_type = func.max(_EVENTS.c.type).label("closing_type")
    if written is None:
        return select(
            open_case.label("open_case"),
            select(closed_at).where(closing).scalar_subquery().label("closed_at"),
            select(closing_type).where(closing).scalar_subquery().label("closing_type"),
        ).select_from(keys)
    # Both from one lookup: the object's index is read once in each weekly partition.
    first = select(closed_at, closing_type).where(closing).lateral("closing")
    # The upsert never changes a stored case's status: one it did not open was open before.
    opened = case((written.c.status == "open", written.c.id))
    return select(
        keys.c.value.label("payment_intent_id"),
        written.c.id.label("case_id"),
        written.c.status.label("case_status"),
        func.coalesce(opened, open_case).label("open_case"),
        first.c.closed_at,
        first.c.closing_type,
    ).select_from(
        keys.outerjoin(written, written.c.payment_intent_id == keys.c.value).join(first, true())
    )


_NOW = bindparam("p_now", type_=UTCDateTime())
_CASE_ID = bindparam("p_case_id", type_=Integer())
_CLOSE_CASE = (
    update(_CASES)
    .where(_CASES.c.id == _CASE_ID, _CASES.c.status == "open")
    .values(
        status=bindparam("p_status"),
        resolved_at=bindparam("p_at", type_=UTCDateTime()),
        updated_at=_NOW,
    )
)
_CANCEL_PENDING = (
    update(_NOTIFICATIONS)
    .where(_NOTIFICATIONS.c.case_id == _CASE_ID, _unindexed(_NOTIFICATIONS.c.status) == "pending")
    .values(status="canceled", updated_at=_NOW)
)
_NOTIFICATION_COLUMNS = (
    "case_id", "kind", "sequence", "dedup_key", "status", "attempts", "next_attempt_at",
    "created_at", "updated_at",
)
_NEWEST_FAILURE_COLUMNS = ("payment_intent_id", "error_code", "decline_code", "failure_message")

# SQLite, one statement after the other: the upsert, the outcomes, the first notifications.
_UPSERT = _upsert_cases("sqlite").returning(
    _CASES.c.payment_intent_id, _CASES.c.id, _CASES.c.status
)
_KNOWN_OUTCOMES = _known_outcomes("sqlite")
# Written for every case a failure touched; the dedup key makes all but the first a no-op.
_QUEUE_FIRST = insert_rows("sqlite", _NOTIFICATIONS, _NOTIFICATION_COLUMNS).on_conflict_do_nothing(
    index_elements=["dedup_key"]
)

# PostgreSQL, all three in one statement: the upsert as a CTE that the rest reads.
WRITTEN_CASES = "written_cases"
_WRITTEN = (
    _upsert_cases("postgresql")
    .returning(_CASES.c.id, _CASES.c.status, *(_CASES.c[name] for name in _NEWEST_FAILURE_COLUMNS))
    .cte(WRITTEN_CASES)
)


def _case_writes() -> tuple[Any, Any]:
    """The cases' upsert with their known outcomes (a CTE reading it), and each written case's
    first notification (see `_first_notification`; a data-modifying CTE)."""
    known = _known_outcomes("postgresql", written=_WRITTEN).cte("known_outcomes")
    now = bindparam("p_cases_now", type_=UTCDateTime())
    first_notifications = select(
        known.c.case_id,
        literal(INITIAL_NOTIFICATION),
        literal(0),
        func.concat("case:", known.c.case_id, ":0"),  # `notification_dedup_key(case_id, 0)`
        case((known.c.case_status == "open", "pending"), else_="canceled"),
        literal(0),
        now,
        now,
        now,
    ).where(known.c.case_id.is_not(None)).order_by(known.c.case_id)
    queue_first = (
        dialect_insert("postgresql", _NOTIFICATIONS)
        .from_select(list(_NOTIFICATION_COLUMNS), first_notifications)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
    )
    return known, queue_first.cte("first_notifications")


_KNOWN, _FIRST_NOTIFICATIONS = _case_writes()
_WRITE_CASES = select(_KNOWN.c.open_case, _KNOWN.c.closed_at, _KNOWN.c.closing_type).add_cte(
    _FIRST_NOTIFICATIONS
)
SETTLED_KEYS_PARAMETER = "settled_keys"


def _none_closes() -> Any:
    """True unless a case the statement touches must be closed: it is open (or opened now)
    and its PaymentIntent's closing event is stored, or is among `settled_keys` (the batch's
    own, which the statement's snapshot does not hold)."""
    settled = batch_keys("postgresql", SETTLED_KEYS_PARAMETER)
    closing = select(_KNOWN.c.open_case).where(
        _KNOWN.c.open_case.is_not(None),
        or_(
            _KNOWN.c.closed_at.is_not(None),
            _KNOWN.c.payment_intent_id.in_(select(settled.c.value)),
        ),
    )
    return ~exists(closing)


_NONE_CLOSES = _none_closes()


def _newest_failures_beside_written() -> Any:
    """The statement's own written cases first, then the stored ones it left alone: a
    statement's snapshot does not hold what the statement writes."""
    written = select(*(_WRITTEN.c[name] for name in _NEWEST_FAILURE_COLUMNS))
    left_alone = select(*(_CASES.c[name] for name in _NEWEST_FAILURE_COLUMNS)).where(
        ~exists().where(_WRITTEN.c.payment_intent_id == _CASES.c.payment_intent_id)
    )
    return union_all(written, left_alone).subquery("newest_failures")


_NEWEST_FAILURES = {"sqlite": _CASES, "postgresql": _newest_failures_beside_written()}


def newest_failures(dialect: str) -> Any:
    """Where a write carried by `write_case_changes` reads each case's newest failure
    (payment_intent_id, error_code, decline_code, failure_message). On SQLite, the table
    itself: the cases are written before the carried writes run."""
    return _NEWEST_FAILURES[dialect]


def lock_payment_intents(connection: Connection, payment_intent_ids: Iterable[str]) -> None:
    """Serialise, until commit, everything that records an outcome of these PaymentIntents.

    A failure and a success of the same intent may be recorded at the same moment by two
    transactions; neither would see the other's uncommitted rows, and the case could stay
    open after the payment succeeded. A transaction-scoped advisory lock per intent makes the
    second wait for the first (PostgreSQL; SQLite already runs one writer at a time).
    """
    lock_keys_until_commit(connection, payment_intent_ids)


# For each touched PaymentIntent: its open case, and its first closing event's time and type.
KnownOutcome = tuple[int | None, datetime | None, str | None]


def _known(result: Result[Any]) -> list[KnownOutcome]:
    return [(row.open_case, row.closed_at, row.closing_type) for row in result]


def write_case_changes(
    connection: Connection,
    failures: Sequence[PaymentFailure],
    settled_intents: Iterable[str],
    *,
    now: datetime,
    carried: Sequence[Write] = (),
) -> None:
    """Apply a batch's failures and outcomes (PaymentIntent ids whose success or cancellation
    is now stored) to `recovery_cases` and the outbox, in a handful of statements.

    `carried` are writes of other tables, sent along: on PostgreSQL in the same statement (a
    round trip for all), elsewhere after the cases. They may read the cases' newest failures
    from `newest_failures`, and nothing else this function writes. The caller holds the
    intents' locks (`lock_payment_intents`).
    """
    touched, rows = _touched_and_rows(failures, settled_intents, now=now)
    if not touched:
        execute_together(connection, carried)
        return
    if connection.dialect.name == "postgresql":
        parameters = _postgresql_parameters(touched, rows, now=now)
        result = execute_carrying(connection, _WRITE_CASES, parameters, carried)
        outcomes = _known(result)
    else:
        outcomes = _write_one_by_one(connection, rows, touched, now=now)
        execute_together(connection, carried)
    for open_case, resolved_at, closing_type in outcomes:
        if open_case is not None and resolved_at is not None and closing_type is not None:
            _close(connection, open_case, status=CLOSING_EVENTS[closing_type], at=resolved_at,
                   now=now)


@dataclass(frozen=True, slots=True)
class GuardedCaseWrites:
    """`write_case_changes`' statement in parts, for a statement that closes no case."""

    cte: Any  # to add to the statement: the upsert, the outcomes and the first emails
    none_closes: Any  # a condition the statement must refuse to commit without
    parameters: dict[str, Any]


def guarded_case_writes(
    failures: Sequence[PaymentFailure], settled_intents: Iterable[str], *, now: datetime
) -> GuardedCaseWrites | None:
    """PostgreSQL: what `write_case_changes` writes, as parts of a statement of the caller's
    that must fail unless `none_closes` holds (closing takes statements of its own, after the
    upsert). None if the batch touches no case. The caller holds the intents' locks."""
    settled = sorted(set(settled_intents))
    touched, rows = _touched_and_rows(failures, settled, now=now)
    if not touched:
        return None
    parameters = {
        **_postgresql_parameters(touched, rows, now=now),
        **keys_parameters(settled, SETTLED_KEYS_PARAMETER),
    }
    return GuardedCaseWrites(_FIRST_NOTIFICATIONS, _NONE_CLOSES, parameters)


def _touched_and_rows(
    failures: Sequence[PaymentFailure], settled_intents: Iterable[str], *, now: datetime
) -> tuple[list[str], list[dict[str, object]]]:
    """The PaymentIntents a batch touches, and one row per case its failures write."""
    merged = merge_failures(failures)
    touched = sorted({*merged, *settled_intents})
    return touched, [_case_row(folded, now) for _, folded in sorted(merged.items())]


def _postgresql_parameters(
    touched: list[str], rows: list[dict[str, object]], *, now: datetime
) -> dict[str, Any]:
    """`_WRITE_CASES`' parameters."""
    return {**rows_parameters("postgresql", rows), **keys_parameters(touched), "p_cases_now": now}


def _write_one_by_one(
    connection: Connection, rows: list[dict[str, Any]], touched: list[str], *, now: datetime
) -> list[KnownOutcome]:
    """`_WRITE_CASES` as three statements; the known outcomes, for `write_case_changes`."""
    cases = connection.execute(_UPSERT, rows).all() if rows else []
    outcomes = _known(connection.execute(_KNOWN_OUTCOMES, keys_parameters(touched)))
    notifications = [
        _first_notification(case_id, open_=status == "open", now=now)
        for case_id, status in sorted((case_id, status) for _, case_id, status in cases)
    ]
    if notifications:
        connection.execute(_QUEUE_FIRST, notifications)
    return outcomes


def _close(
    connection: Connection, case_id: int, *, status: str, at: datetime, now: datetime
) -> None:
    """Close an open case at its outcome's time and cancel the emails and retries still
    waiting for it."""
    parameters = {"p_case_id": case_id, "p_status": status, "p_at": at, "p_now": now}
    connection.execute(_CLOSE_CASE, parameters)
    connection.execute(_CANCEL_PENDING, parameters)
    cancel_retries(connection, [case_id], now=now)


def _first_notification(case_id: int, *, open_: bool, now: datetime) -> dict[str, Any]:
    # Pending while the case is open. A case born closed (its outcome was stored before its
    # failure) is closed by `write_case_changes` next, which cancels it with the others.
    return {
        "case_id": case_id,
        "kind": INITIAL_NOTIFICATION,
        "sequence": 0,
        "dedup_key": notification_dedup_key(case_id, 0),
        "status": "pending" if open_ else "canceled",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _case_row(folded: MergedFailures, now: datetime) -> dict[str, object]:
    failure = folded.newest
    return {
        "payment_intent_id": failure.payment_intent_id,
        "customer_id": failure.customer_id,
        "payment_method_id": failure.payment_method_id,
        "kind": classify_decline(failure.code, failure.decline_code),
        "status": "open",
        "amount": failure.amount,
        "currency": failure.currency.lower(),
        "error_code": failure.code,
        "decline_code": failure.decline_code,
        "failure_message": failure.message,
        "failure_count": folded.failure_count,
        "opened_at": folded.opened_at,
        "last_failure_at": failure.failed_at,
        "last_charge_id": failure.charge_id,
        "updated_at": now,
    }


def record_payment_failure(session: Session, failure: PaymentFailure, *, now: datetime) -> int:
    """Open the case for this PaymentIntent or fold the failure into it; return the case id.

    The charger's 402 path: the same rule as the webhook's, for one failure.
    """
    connection = session.connection()
    lock_payment_intents(connection, [failure.payment_intent_id])
    write_case_changes(connection, [failure], (), now=now)
    case_id = connection.execute(
        select(_CASES.c.id).where(_CASES.c.payment_intent_id == failure.payment_intent_id)
    ).scalar_one()
    return int(case_id)


def close_case(
    session: Session, payment_intent_id: str, *, status: str, at: datetime, now: datetime
) -> None:
    """Mark an open case recovered or canceled and cancel the emails still waiting for it.

    For callers that learn the outcome elsewhere than from a stored event.
    """
    connection = session.connection()
    lock_payment_intents(connection, [payment_intent_id])
    case_id = connection.execute(
        select(_CASES.c.id).where(
            _CASES.c.payment_intent_id == payment_intent_id, _CASES.c.status == "open"
        )
    ).scalar()
    if case_id is not None:
        _close(connection, case_id, status=status, at=at, now=now)


def recent_cases(session: Session, *, limit: int = 50) -> list[RecoveryCase]:
    """The latest opened cases first (the sandbox console's list)."""
    statement = select(RecoveryCase).order_by(RecoveryCase.opened_at.desc()).limit(limit)
    return list(session.scalars(statement))
