"""The `charges` table: a row written before Stripe is asked, and its outcome written after.

The row is the charger's memory across crashes. Its reference is unique, so two runs (or two
processes) asking for the same reference share one row and one idempotency key. An outcome
only ever replaces `pending`: if a webhook settled the row first, the webhook's word stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from processor.charging.request import ChargeOutcome, ChargeRequest, idempotency_key
from processor.db.models import Charge
from processor.db.upsert import insert_ignoring_conflict
from processor.recovery.cases import classify_decline

PENDING = "pending"
FINAL_STATUSES = frozenset({"succeeded", "processing", "requires_action", "failed", "error"})
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class StripeAnswer:
    """What one charge's request finally produced, in the row's terms."""

    status: str
    payment_intent_id: str | None = None
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    charge_id: str | None = None  # the attempt (`ch_...`), so the webhook's report dedupes


def find_charge(session: Session, reference: str) -> Charge | None:
    return session.scalars(select(Charge).where(Charge.reference == reference)).one_or_none()


def find_charges(session: Session, references: Iterable[str]) -> dict[str, Charge]:
    """The stored rows among `references`, by reference (for checking a whole batch at once)."""
    wanted = list(dict.fromkeys(references))
    found: dict[str, Charge] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        for row in session.scalars(select(Charge).where(Charge.reference.in_(chunk))):
            found[row.reference] = row
    return found


def conflict_with(row: Charge, request: ChargeRequest) -> str | None:
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
) -> tuple[Charge, bool]:
    """Write the pending row for `request` unless its reference exists; (row, inserted)."""
    assert request.reference is not None
    inserted = insert_ignoring_conflict(
        session,
        Charge,
        {
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
        },
        conflict_on=["reference"],
    )
    row = find_charge(session, request.reference)
    assert row is not None
    return row, inserted


def record_answer(
    session: Session, charge_id: int, answer: StripeAnswer, *, attempts: int, now: datetime
) -> Charge:
    """Store Stripe's answer on a pending row; a row settled meanwhile keeps its status."""
    settled = session.execute(
        update(Charge)
        .where(Charge.id == charge_id, Charge.status == PENDING)
        .values(
            status=answer.status,
            payment_intent_id=answer.payment_intent_id,
            error_code=answer.error_code,
            decline_code=answer.decline_code,
            error_message=answer.message,
            attempt_count=Charge.attempt_count + attempts,
            updated_at=now,
            completed_at=now,
        )
    )
    if not settled.rowcount:  # type: ignore[attr-defined]
        session.execute(
            update(Charge)
            .where(Charge.id == charge_id, Charge.payment_intent_id.is_(None))
            .values(payment_intent_id=answer.payment_intent_id, updated_at=now)
        )
    return _reload(session, charge_id)


def record_unresolved(
    session: Session, charge_id: int, message: str, *, attempts: int, now: datetime
) -> Charge:
    """Keep the row pending (the outcome is unknown) and note why, for the next run."""
    session.execute(
        update(Charge)
        .where(Charge.id == charge_id, Charge.status == PENDING)
        .values(
            error_message=message,
            attempt_count=Charge.attempt_count + attempts,
            updated_at=now,
        )
    )
    return _reload(session, charge_id)


def outcome_from_row(row: Charge, *, resumed: bool) -> ChargeOutcome:
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


def _reload(session: Session, charge_id: int) -> Charge:
    return session.scalars(
        select(Charge).where(Charge.id == charge_id).execution_options(populate_existing=True)
    ).one()
