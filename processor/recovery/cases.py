"""Recovery cases: one per failed off-session PaymentIntent, opened by whichever of the charger's
402 or the `payment_intent.payment_failed` webhook comes first, and closed by the outcome.

Order does not matter: a failure never reopens a closed case, an older failure never overwrites
a newer one (even on a closed case), the same attempt reported by both paths (same charge id)
counts once, and the first notification is written exactly once per case, even when the
case is born closed because the success arrived first (it is then written canceled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from processor.db import direct
from processor.db.locks import lock_until_commit
from processor.db.models import Notification, RecoveryCase, StripeEvent
from processor.db.types import UTCDateTime
from processor.db.upsert import insert_ignoring_conflict, insert_ignoring_conflict_statement

AUTHENTICATION_REQUIRED = "authentication_required"
PAYMENT_METHOD_REQUIRED = "payment_method_required"
INITIAL_NOTIFICATION = "initial"
REMINDER_NOTIFICATION = "reminder"
_CLOSING_EVENTS = {"payment_intent.succeeded": "recovered", "payment_intent.canceled": "canceled"}


@dataclass(frozen=True)
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


def classify_decline(code: str | None, decline_code: str | None) -> str:
    """The bank wants the customer present, or the method itself must change."""
    if AUTHENTICATION_REQUIRED in (code, decline_code):
        return AUTHENTICATION_REQUIRED
    return PAYMENT_METHOD_REQUIRED


def notification_dedup_key(case_id: int, sequence: int) -> str:
    return f"case:{case_id}:{sequence}"


@dataclass(frozen=True)
class CaseState:
    """A recovery case as the current transaction leaves it."""

    id: int
    kind: str
    status: str
    error_code: str | None
    decline_code: str | None
    failure_message: str | None
    failure_count: int


def record_payment_failure(
    session: Session, failure: PaymentFailure, *, now: datetime
) -> CaseState:
    """Open the case for this PaymentIntent or fold a newer failure into it.

    Core statements, not the ORM: this runs for every failed payment, on the webhook's hot
    path as well as the charger's.
    """
    lock_payment_intent(session, failure.payment_intent_id)
    kind = classify_decline(failure.code, failure.decline_code)
    row = {
        "payment_intent_id": failure.payment_intent_id,
        "customer_id": failure.customer_id,
        "payment_method_id": failure.payment_method_id,
        "kind": kind,
        "status": "open",
        "amount": failure.amount,
        "currency": failure.currency.lower(),
        "error_code": failure.code,
        "decline_code": failure.decline_code,
        "failure_message": failure.message,
        "failure_count": 1,
        "opened_at": failure.failed_at,
        "last_failure_at": failure.failed_at,
        "last_charge_id": failure.charge_id,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    opening = insert_ignoring_conflict_statement(dialect, _CASES, ("payment_intent_id",), ("id",))
    case_id = direct.execute(session, opening, row).scalar()
    if case_id is not None:
        _queue_first_notification(session, case_id, now=now)
        status = "open"
        outcome = _known_outcome(session, failure.payment_intent_id)
        if outcome is not None:
            # The success or cancellation was recorded before this (late) failure arrived:
            # end where in-order delivery ends, closed with its email canceled.
            status, resolved_at = outcome
            direct.execute(
                session, _SET_OUTCOME, {"p_id": case_id, "p_status": status, "p_at": resolved_at}
            )
            cancel_pending_notifications(session, case_id, now=now)
        return CaseState(case_id, kind, status, failure.code, failure.decline_code,
                         failure.message, 1)
    case = direct.execute(session, _LOCK_CASE, {"p_intent": failure.payment_intent_id}).one()
    if failure.charge_id is not None and failure.charge_id == case.last_charge_id:
        return _state(case)  # the same attempt, already reported by the other path
    changed = case._asdict()
    changed["failure_count"] = case.failure_count + 1
    changed["opened_at"] = min(case.opened_at, failure.failed_at)
    if (failure.failed_at, failure.charge_id or "") >= (
        case.last_failure_at,
        case.last_charge_id or "",
    ):
        changed.update(
            kind=kind,
            error_code=failure.code,
            decline_code=failure.decline_code,
            failure_message=failure.message,
            payment_method_id=failure.payment_method_id or case.payment_method_id,
            last_failure_at=failure.failed_at,
            last_charge_id=failure.charge_id,
        )
    parameters = {f"p_{name}": value for name, value in changed.items()}
    direct.execute(session, _UPDATE_CASE, {**parameters, "p_updated_at": now})
    return _state(changed)


def _state(case: Any) -> CaseState:
    values = case if isinstance(case, dict) else case._asdict()
    return CaseState(**{name: values[name] for name in CaseState.__dataclass_fields__})


_CASES = RecoveryCase.__table__
_NOTIFICATIONS = Notification.__table__
_CASE_FIELDS = (
    "id", "kind", "status", "payment_method_id", "error_code", "decline_code",
    "failure_message", "failure_count", "opened_at", "last_failure_at", "last_charge_id",
)
_LOCK_CASE = (
    select(*(_CASES.c[name] for name in _CASE_FIELDS))
    .where(_CASES.c.payment_intent_id == bindparam("p_intent"))
    .with_for_update()
)
_UPDATE_CASE = (
    update(_CASES)
    .where(_CASES.c.id == bindparam("p_id"))
    .values(
        {
            name: bindparam(f"p_{name}", type_=_CASES.c[name].type)
            for name in (*_CASE_FIELDS[1:], "updated_at")
        }
    )
)
_SET_OUTCOME = (
    update(_CASES)
    .where(_CASES.c.id == bindparam("p_id"))
    .values(status=bindparam("p_status"), resolved_at=bindparam("p_at", type_=UTCDateTime()))
)


# Static statements (values as parameters): closing runs for every successful payment.
_CLOSE_OPEN_CASE = (
    update(_CASES)
    .where(_CASES.c.payment_intent_id == bindparam("p_intent"), _CASES.c.status == "open")
    .values(
        status=bindparam("p_status"),
        resolved_at=bindparam("p_at", type_=UTCDateTime()),
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)
_CANCEL_PENDING_OF_INTENT = (
    update(_NOTIFICATIONS)
    .where(
        _NOTIFICATIONS.c.case_id
        == select(_CASES.c.id)
        .where(_CASES.c.payment_intent_id == bindparam("p_intent"))
        .scalar_subquery(),
        _NOTIFICATIONS.c.status == "pending",
    )
    .values(status="canceled", updated_at=bindparam("p_now", type_=UTCDateTime()))
)


def close_case(
    session: Session, payment_intent_id: str, *, status: str, at: datetime, now: datetime
) -> None:
    """Mark the case recovered or canceled and cancel the emails still waiting for it.

    Without a case (the payment never failed, or its failure is still on its way) nothing
    changes here: a failure recorded later finds this outcome and opens the case closed.
    Emails wait only for open cases (every path that closes one cancels them, and reminders
    are queued only while it is open), so when no open case was closed there are none to
    cancel: most successful payments never failed and pay for one statement less.
    """
    lock_payment_intent(session, payment_intent_id)
    parameters = {"p_intent": payment_intent_id, "p_status": status, "p_at": at, "p_now": now}
    if direct.execute(session, _CLOSE_OPEN_CASE, parameters).rowcount:
        direct.execute(session, _CANCEL_PENDING_OF_INTENT, parameters)


def recent_cases(session: Session, *, limit: int = 50) -> list[RecoveryCase]:
    """The latest opened cases first (the sandbox console's list)."""
    statement = select(RecoveryCase).order_by(RecoveryCase.opened_at.desc()).limit(limit)
    return list(session.scalars(statement))


def lock_payment_intent(session: Session, payment_intent_id: str) -> None:
    """Serialise, until commit, everything that records an outcome of this PaymentIntent.

    A failure and a success of the same intent may be recorded at the same moment by two
    transactions; neither would see the other's uncommitted rows, and the case could stay
    open after the payment succeeded. On PostgreSQL a transaction-scoped advisory lock on the
    intent makes the second wait for the first; SQLite already runs one writer at a time.
    """
    lock_until_commit(session, payment_intent_id)


def cancel_pending_notifications(session: Session, case_id: int, *, now: datetime) -> int:
    result = session.execute(
        update(Notification)
        .where(Notification.case_id == case_id, Notification.status == "pending")
        .values(status="canceled", updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _queue_first_notification(session: Session, case_id: int, *, now: datetime) -> None:
    insert_ignoring_conflict(
        session,
        Notification,
        {
            "case_id": case_id,
            "kind": INITIAL_NOTIFICATION,
            "sequence": 0,
            "dedup_key": notification_dedup_key(case_id, 0),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        },
        conflict_on=["dedup_key"],
    )


_EVENTS = StripeEvent.__table__
_OUTCOME_EVENTS = (
    # Filtered on status in Python: with `status` in the WHERE clause SQLite's planner picks
    # the status index and scans every processed event instead of this intent's few. The
    # types are compared one by one rather than with IN, whose list SQLAlchemy expands per
    # call (processor.db.direct runs this on the driver).
    select(_EVENTS.c.type, _EVENTS.c.stripe_created_at, _EVENTS.c.status).where(
        _EVENTS.c.object_id == bindparam("p_intent"),
        or_(*(_EVENTS.c.type == event_type for event_type in _CLOSING_EVENTS)),
    )
)


def _known_outcome(session: Session, payment_intent_id: str) -> tuple[str, datetime] | None:
    rows = direct.execute(session, _OUTCOME_EVENTS, {"p_intent": payment_intent_id}).all()
    settled = sorted(
        (row.stripe_created_at, row.type) for row in rows if row.status == "processed"
    )
    if not settled:
        return None
    created, event_type = settled[0]
    return _CLOSING_EVENTS[event_type], created
