"""Recovery cases and `charges` rows from `payment_intent.*` events.

The case logic is shared with the charger's 402 path (processor.recovery.cases): whichever
reports a failure first opens the case, and the same attempt reported again changes nothing.
A charge row is found by its PaymentIntent id, or, before the charger has stored that id, by
the `reference` the charger puts in the PaymentIntent's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, update
from sqlalchemy.orm import Session

from processor.db.models import Charge
from processor.recovery.cases import PaymentFailure, close_case, record_payment_failure
from processor.webhooks.envelope import Event
from processor.webhooks.handlers import ref_id, required_id, text_or_none

UNCANCELABLE_CHARGE_STATUSES = ("succeeded", "error")


def _charge_of(intent: Mapping[str, Any]) -> Any:
    """The WHERE clause finding the charges row of this PaymentIntent."""
    intent_id = required_id(intent)
    metadata = intent.get("metadata")
    reference = metadata.get("reference") if isinstance(metadata, Mapping) else None
    if not isinstance(reference, str):
        return Charge.payment_intent_id == intent_id
    return or_(
        Charge.payment_intent_id == intent_id,
        and_(Charge.reference == reference, Charge.payment_intent_id.is_(None)),
    )


def payment_failure(event: Event) -> PaymentFailure:
    intent = event.object
    error = intent.get("last_payment_error")
    error = error if isinstance(error, Mapping) else {}
    method_id = ref_id(error.get("payment_method")) or ref_id(intent.get("payment_method"))
    amount = intent.get("amount")
    currency = intent.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        raise ValueError("payment intent without amount or currency")
    return PaymentFailure(
        payment_intent_id=required_id(intent),
        customer_id=ref_id(intent.get("customer")),
        payment_method_id=method_id,
        amount=amount,
        currency=currency,
        code=text_or_none(error.get("code")),
        decline_code=text_or_none(error.get("decline_code")),
        message=text_or_none(error.get("message")),
        failed_at=event.created,
        charge_id=ref_id(intent.get("latest_charge")) or ref_id(error.get("charge")),
    )


def on_payment_intent_payment_failed(session: Session, event: Event, now: datetime) -> None:
    recovery_case = record_payment_failure(session, payment_failure(event), now=now)
    # The charge row shows the case's newest failure, whatever order failures arrived in;
    # a charge that succeeded stays succeeded.
    session.execute(
        update(Charge)
        .where(_charge_of(event.object))
        .values(
            payment_intent_id=required_id(event.object),
            status=case((Charge.status == "succeeded", "succeeded"), else_="failed"),
            error_code=recovery_case.error_code,
            decline_code=recovery_case.decline_code,
            error_message=recovery_case.failure_message,
            updated_at=now,
        )
    )


def on_payment_intent_succeeded(session: Session, event: Event, now: datetime) -> None:
    intent_id = required_id(event.object)
    close_case(session, intent_id, status="recovered", at=event.created, now=now)
    session.execute(
        update(Charge)
        .where(_charge_of(event.object))
        .values(
            payment_intent_id=intent_id,
            status="succeeded",
            completed_at=event.created,
            updated_at=now,
        )
    )


def on_payment_intent_canceled(session: Session, event: Event, now: datetime) -> None:
    intent_id = required_id(event.object)
    close_case(session, intent_id, status="canceled", at=event.created, now=now)
    # Failed or not yet answered, the charge is over: whatever failures arrive later.
    session.execute(
        update(Charge)
        .where(_charge_of(event.object), Charge.status.not_in(UNCANCELABLE_CHARGE_STATUSES))
        .values(payment_intent_id=intent_id, status="failed", completed_at=event.created,
                updated_at=now)
    )
