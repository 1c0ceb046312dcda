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

from sqlalchemy import and_, bindparam, case, or_, update
from sqlalchemy.orm import Session

from processor.db import direct
from processor.db.models import Charge
from processor.db.types import UTCDateTime
from processor.recovery.cases import PaymentFailure, close_case, record_payment_failure
from processor.stripe_fields import ref_id, required_id, text_or_none
from processor.webhooks.envelope import Event

UNCANCELABLE_CHARGE_STATUSES = ("succeeded", "error")
_CHARGES = Charge.__table__


def _charges_of_intent() -> Any:
    """The charges row of `:p_intent`, or, before the charger stored that id, of `:p_reference`."""
    columns = _CHARGES.c
    return or_(
        columns.payment_intent_id == bindparam("p_intent"),
        and_(columns.reference == bindparam("p_reference"), columns.payment_intent_id.is_(None)),
    )


# Static statements with parameters: compiled once by SQLAlchemy.
_CHARGE_FAILED = (
    update(_CHARGES)
    .where(_charges_of_intent())
    .values(
        payment_intent_id=bindparam("p_intent"),
        status=case((_CHARGES.c.status == "succeeded", "succeeded"), else_="failed"),
        error_code=bindparam("p_error_code"),
        decline_code=bindparam("p_decline_code"),
        error_message=bindparam("p_error_message"),
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)
_CHARGE_SUCCEEDED = (
    update(_CHARGES)
    .where(_charges_of_intent())
    .values(
        payment_intent_id=bindparam("p_intent"),
        status="succeeded",
        completed_at=bindparam("p_at", type_=UTCDateTime()),
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)
# Failed or not yet answered, the charge is over, whatever failures arrive later.
_CHARGE_CANCELED = (
    update(_CHARGES)
    .where(_charges_of_intent(), _CHARGES.c.status.not_in(UNCANCELABLE_CHARGE_STATUSES))
    .values(
        payment_intent_id=bindparam("p_intent"),
        status="failed",
        completed_at=bindparam("p_at", type_=UTCDateTime()),
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)


def _intent_keys(intent: Mapping[str, Any]) -> dict[str, Any]:
    metadata = intent.get("metadata")
    reference = metadata.get("reference") if isinstance(metadata, Mapping) else None
    return {
        "p_intent": required_id(intent),
        "p_reference": reference if isinstance(reference, str) else None,
    }


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
    direct.execute(
        session,
        _CHARGE_FAILED,
        {
            **_intent_keys(event.object),
            "p_error_code": recovery_case.error_code,
            "p_decline_code": recovery_case.decline_code,
            "p_error_message": recovery_case.failure_message,
            "p_now": now,
        },
    )


def on_payment_intent_succeeded(session: Session, event: Event, now: datetime) -> None:
    keys = _intent_keys(event.object)
    close_case(session, keys["p_intent"], status="recovered", at=event.created, now=now)
    direct.execute(session, _CHARGE_SUCCEEDED, {**keys, "p_at": event.created, "p_now": now})


def on_payment_intent_canceled(session: Session, event: Event, now: datetime) -> None:
    keys = _intent_keys(event.object)
    close_case(session, keys["p_intent"], status="canceled", at=event.created, now=now)
    direct.execute(session, _CHARGE_CANCELED, {**keys, "p_at": event.created, "p_now": now})
