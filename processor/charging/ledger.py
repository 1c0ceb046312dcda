"""The `charges` table: a row written before Stripe is asked, and its outcome written after.

The row is the charger's memory across crashes. Its reference is unique, so two runs (or two
processes) asking for the same reference share one row and one idempotency key. An outcome
only ever replaces `pending`: if a webhook settled the row first, the webhook's word stands.
This is the batch's hot path, so it speaks Core, not the ORM: rows rather than objects, and
statements built once with bound parameters (SQLAlchemy then reuses their compiled form).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from processor.charging.decline_policy import Decline
from processor.charging.request import ChargeOutcome, ChargeRequest, idempotency_key
from processor.db.models import Charge, table_of
from processor.db.upsert import insert_ignoring_conflict_statement
from processor.recovery.cases import PaymentFailure, classify_decline

CHARGES = table_of(Charge)
PENDING = "pending"
FINAL_STATUSES = frozenset({"succeeded", "processing", "requires_action", "failed", "error"})
_LOOKUP_CHUNK = 500

_FIND = select(CHARGES).where(CHARGES.c.reference == bindparam("reference"))
_RELOAD = select(CHARGES).where(CHARGES.c.id == bindparam("charge_id"))
_SETTLE = (
    update(CHARGES)
    .where(CHARGES.c.id == bindparam("charge_id"), CHARGES.c.status == PENDING)
    .values(
        status=bindparam("status"),
        payment_intent_id=bindparam("payment_intent_id"),
        error_code=bindparam("error_code"),
        decline_code=bindparam("decline_code"),
        error_message=bindparam("message"),
        attempt_count=CHARGES.c.attempt_count + bindparam("attempts"),
        updated_at=bindparam("now"),
        completed_at=bindparam("now"),
    )
    .returning(*CHARGES.c)
)
_FILL_INTENT = (
    update(CHARGES)
    .where(CHARGES.c.id == bindparam("charge_id"), CHARGES.c.payment_intent_id.is_(None))
    .values(payment_intent_id=bindparam("payment_intent_id"), updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class StripeAnswer:
    """What one charge's request finally produced, in the row's terms."""

    status: str
    payment_intent_id: str | None = None
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    charge_id: str | None = None  # the attempt (`ch_...`), so the webhook's report dedupes
    decline: Decline | None = None  # the fields the retry ladder decides by

    def failure(
        self, charged: Charged, payment_method_id: str | None, *, failed_at: datetime
    ) -> PaymentFailure:
        """This answer as the failure its recovery case records."""
        assert self.payment_intent_id is not None, "only an answer about an intent fails one"
        return PaymentFailure(
            payment_intent_id=self.payment_intent_id,
            customer_id=charged.customer_id,
            payment_method_id=payment_method_id,
            amount=charged.amount,
            currency=charged.currency,
            code=self.error_code,
            decline_code=self.decline_code,
            message=self.message,
            failed_at=failed_at,
            charge_id=self.charge_id,
        )


class Charged(Protocol):
    """Whose money a declined confirm asked for: a `charges` row, or a retry's recovery case."""

    @property
    def customer_id(self) -> str | None: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


ChargeRow = Row[Any]  # a `charges` row: columns as attributes (`row.status`, `row.reference`)


def find_charge(session: Session, reference: str) -> ChargeRow | None:
    return session.execute(_FIND, {"reference": reference}).one_or_none()


def find_charges(session: Session, references: Iterable[str]) -> dict[str, ChargeRow]:
    """The stored rows among `references`, by reference (for checking a whole batch at once)."""
    wanted = list(dict.fromkeys(references))
    found: dict[str, ChargeRow] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        for row in session.execute(select(CHARGES).where(CHARGES.c.reference.in_(chunk))):
            found[row.reference] = row
    return found


def conflict_with(row: ChargeRow, request: ChargeRequest) -> str | None:
    """Why `request` cannot reuse the reference of `row`, or None when it is the same charge."""
    differences = []
    if row.customer_id != request.customer_id:
        differences.append(f"customer {row.customer_id}")
    if row.amount != request.amount or row.currency != request.currency:
        differences.append(f"amount {row.amount} {row.currency}")
    if request.payment_method_id and request.payment_method_id != row.payment_method_id:
        differences.append(f"payment method {row.payment_method_id}")
    if not differences:
        return None
    return (
        f"reference {row.reference!r} was already used for a different charge "
        f"({', '.join(differences)}); use a new reference"
    )


def reserve_charge(
    session: Session, request: ChargeRequest, payment_method_id: str, *, now: datetime
) -> tuple[ChargeRow, bool]:
    """Write the pending row for `request` unless its reference exists; (row, inserted)."""
    assert request.reference is not None
    values = {
        "reference": request.reference,
        "idempotency_key": idempotency_key(request.reference),
        "customer_id": request.customer_id,
        "payment_method_id": payment_method_id,
        "amount": request.amount,
        "currency": request.currency,
        "description": request.description,
        "status": PENDING,
        "attempt_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    # The unique reference makes racing inserts safe; RETURNING saves the read-back of the
    # common case (the row is new). No conflict target: the idempotency key is made from the
    # reference, and PostgreSQL may meet a racing insert at either unique index first (at a
    # target's other one, it raises).
    statement = insert_ignoring_conflict_statement(
        session.get_bind().dialect.name, CHARGES, (), tuple(CHARGES.c.keys())
    )
    row = session.execute(statement, values).one_or_none()
    if row is not None:
        return row, True
    existing = find_charge(session, request.reference)
    assert existing is not None
    return existing, False


def record_answer(
    session: Session, charge_id: int, answer: StripeAnswer, *, attempts: int, now: datetime
) -> ChargeRow:
    """Store Stripe's answer on a pending row; a row settled meanwhile keeps its status."""
    settled = session.execute(
        _SETTLE,
        {
            "charge_id": charge_id,
            "status": answer.status,
            "payment_intent_id": answer.payment_intent_id,
            "error_code": answer.error_code,
            "decline_code": answer.decline_code,
            "message": answer.message,
            "attempts": attempts,
            "now": now,
        },
    ).one_or_none()
    if settled is not None:
        return settled
    session.execute(
        _FILL_INTENT,
        {"charge_id": charge_id, "payment_intent_id": answer.payment_intent_id, "now": now},
    )
    return _reload(session, charge_id)


def record_unresolved(
    session: Session, charge_id: int, message: str, *, attempts: int, now: datetime
) -> ChargeRow:
    """Keep the row pending (the outcome is unknown) and note why, for the next run."""
    session.execute(
        update(CHARGES)
        .where(CHARGES.c.id == charge_id, CHARGES.c.status == PENDING)
        .values(
            error_message=message,
            attempt_count=CHARGES.c.attempt_count + attempts,
            updated_at=now,
        )
    )
    return _reload(session, charge_id)


def outcome_from_row(row: ChargeRow, *, resumed: bool) -> ChargeOutcome:
    failed = row.status == "failed"
    return ChargeOutcome(
        reference=row.reference,
        status=row.status,
        customer_id=row.customer_id,
        amount=row.amount,
        currency=row.currency,
        payment_method_id=row.payment_method_id,
        payment_intent_id=row.payment_intent_id,
        error_code=row.error_code,
        decline_code=row.decline_code,
        message=row.error_message,
        recovery_kind=(
            classify_decline(row.error_code, row.decline_code)
            if failed and row.payment_intent_id
            else None
        ),
        resumed=resumed,
    )


def _reload(session: Session, charge_id: int) -> ChargeRow:
    return session.execute(_RELOAD, {"charge_id": charge_id}).one()
