"""Where a setup stands and what it saved, as this server recorded it.

Webhooks may not have arrived when the page asks: then Stripe is asked directly and what it
says is recorded in the same rows the webhooks complete, so the answer never depends on
webhook timing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from processor.checkout.generated import BANK_REDIRECT_TYPES
from processor.checkout.setup_intents import UNAVAILABLE_MESSAGE
from processor.checkout.setup_records import (
    AttemptRecord,
    error_fields,
    record_attempt,
    record_payment_method,
)
from processor.db.models import PaymentMethod, SetupAttempt
from processor.errors import NotFound, StripeUnavailable
from processor.stripe_gateway import ref_id, value_of

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

_SETUP_INTENT_ID = re.compile(r"^seti_[A-Za-z0-9_]{1,200}$")


@dataclass(frozen=True)
class SavedMethod:
    id: str
    type: str | None
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    generated_from: str | None = None  # `ideal` / `bancontact` for the SEPA method they left


@dataclass(frozen=True)
class SetupOutcome:
    setup_intent_id: str
    status: str
    payment_method: SavedMethod | None
    error_code: str | None = None
    error_message: str | None = None


def setup_outcome(deps: Runtime, *, customer_id: str, setup_intent_id: str) -> SetupOutcome:
    """Where one of this customer's setups stands, and the method it saved."""
    if not _SETUP_INTENT_ID.match(setup_intent_id):
        raise NotFound("No such setup.")
    with deps.sessions() as session:
        stored = _stored_outcome(session, customer_id, setup_intent_id)
    if stored is not None:
        return stored
    try:
        intent = deps.stripe.v1.setup_intents.retrieve(
            setup_intent_id, {"expand": ["payment_method", "latest_attempt"]}
        )
    except stripe.StripeError as exc:
        log.warning("SetupIntent retrieve failed: %s", type(exc).__name__)
        raise StripeUnavailable(UNAVAILABLE_MESSAGE) from exc
    if ref_id(intent.customer) != customer_id:
        raise NotFound("No such setup.")
    return _record_what_stripe_says(deps, customer_id, intent)


def _stored_outcome(
    session: Session, customer_id: str, setup_intent_id: str
) -> SetupOutcome | None:
    """The finished setup as stored, or None when Stripe must be asked."""
    attempt = session.scalar(
        select(SetupAttempt).where(SetupAttempt.setup_intent_id == setup_intent_id)
    )
    # Only setups this customer started through us are visible; others look absent.
    if attempt is None or attempt.customer_id != customer_id:
        raise NotFound("No such setup.")
    if attempt.status == "succeeded" and attempt.payment_method_type in BANK_REDIRECT_TYPES:
        # The saved method is the one the bank set-up generated, once its webhook linked it.
        stored = session.scalar(
            select(PaymentMethod).where(
                PaymentMethod.customer_id == customer_id,
                PaymentMethod.setup_intent_id == setup_intent_id,
                PaymentMethod.generated_from.is_not(None),
            )
        )
    elif attempt.status == "succeeded" and attempt.payment_method_id:
        stored = session.get(PaymentMethod, attempt.payment_method_id)
    else:
        stored = None
    if stored is not None and stored.type is not None:
        return SetupOutcome(setup_intent_id, attempt.status, _saved_method(stored))
    return None


def _record_what_stripe_says(
    deps: Runtime, customer_id: str, intent: stripe.SetupIntent
) -> SetupOutcome:
    status = str(intent.status)
    method = (
        intent.payment_method if isinstance(intent.payment_method, stripe.PaymentMethod) else None
    )
    error = value_of(intent, "last_setup_error")
    record_attempt(
        deps.sessions,
        deps.clock,
        AttemptRecord(
            customer_id=customer_id,
            setup_intent_id=intent.id,
            status=status,
            payment_method_id=ref_id(intent.payment_method),
            **error_fields(error),
        ),
        refreshed=True,
    )
    saved = None
    kind = value_of(method, "type")
    if kind in BANK_REDIRECT_TYPES:
        # Never saved itself; the generated method is recorded by its own webhook.
        saved = _generated_method(intent, str(kind)) if status == "succeeded" else None
    elif method is not None and status in {"succeeded", "processing"}:
        stored = record_payment_method(
            deps.sessions, deps.clock, method.to_dict(), setup_intent_id=intent.id
        )
        saved = _saved_method(stored)
    return SetupOutcome(
        intent.id,
        status,
        saved,
        error_code=value_of(error, "code"),
        error_message=value_of(error, "message"),
    )


def _generated_method(intent: stripe.SetupIntent, kind: str) -> SavedMethod | None:
    """The `sepa_debit` method a bank set-up left, as its SetupAttempt describes it."""
    details = value_of(intent, "latest_attempt", "payment_method_details", kind)
    method_id = ref_id(value_of(details, "generated_sepa_debit"))
    if method_id is None:
        return None
    last4 = value_of(details, "iban_last4")
    return SavedMethod(method_id, "sepa_debit", None, last4, None, None, generated_from=kind)


def _saved_method(row: PaymentMethod) -> SavedMethod:
    if row.type == "sepa_debit":
        return SavedMethod(
            row.id, row.type, None, row.sepa_last4, None, None, generated_from=row.generated_from
        )
    return SavedMethod(
        row.id, row.type, row.card_brand, row.card_last4, row.card_exp_month, row.card_exp_year
    )
