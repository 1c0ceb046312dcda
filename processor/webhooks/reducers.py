"""Pure reducers: a Stripe event in, the row changes it intends out; `REDUCERS` lists them all.

A reducer reads only the event: never the database, never Stripe, never the clock. It raises
(ValueError, KeyError, ...) for an event it cannot apply; that event alone is stored as failed.
A type that is not listed is stored as `ignored` and acknowledged, so subscribing the endpoint
to more events than we use costs a row, not a retry storm. `processor.webhooks.apply` merges
the changes of a whole batch and writes them, one statement per table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from processor.charging.settlement import IntentOutcome, Settlement
from processor.checkout.attempts import AttemptChange
from processor.checkout.generated import bank_type_of
from processor.checkout.methods import MethodChange, method_details
from processor.clock import from_unix
from processor.recovery.cases import PaymentFailure
from processor.stripe_gateway import ref_id, required_id, text_or_none, value_of
from processor.webhooks.envelope import Event

Change = AttemptChange | MethodChange | PaymentFailure | IntentOutcome
Reducer = Callable[[Event], tuple[Change, ...]]


# -- setup intents: the attempt's state, and the method a success names -----------------------


def setup_state(event: Event, error: Any = None) -> AttemptChange:
    """The attempt's state as this event reports it."""
    intent = event.object
    error = error if isinstance(error, Mapping) else {}
    created = intent.get("created")
    return AttemptChange(
        setup_intent_id=required_id(intent),
        customer_id=ref_id(intent.get("customer")),
        confirmation_token_id=text_or_none(value_of(intent, "metadata", "confirmation_token"))
        or None,
        status=text_or_none(intent.get("status")) or "requires_payment_method",
        payment_method_id=ref_id(intent.get("payment_method")),
        error_code=text_or_none(error.get("code")),
        decline_code=text_or_none(error.get("decline_code")),
        error_message=text_or_none(error.get("message")),
        state_changed_at=event.created,
        created_at=from_unix(created) if isinstance(created, int) else event.created,
        latest_attempt_id=ref_id(intent.get("latest_attempt")),
        payment_method_type=bank_type_of(intent),
    )


def on_setup_intent_succeeded(event: Event) -> tuple[Change, ...]:
    state = setup_state(event)
    if state.payment_method_id is None or state.payment_method_type is not None:
        # An iDEAL/Bancontact method is single use: the `sepa_debit` method it generated is
        # the one saved, and its own `payment_method.attached` records it.
        return (state,)
    # The event names the method only; `payment_method.attached` (or the background
    # completion) brings its details.
    method = MethodChange(
        state.payment_method_id,
        customer_id=state.customer_id,
        setup_intent_id=state.setup_intent_id,
        attached_at=event.created if state.customer_id else None,
    )
    return state, method


def on_setup_intent_setup_failed(event: Event) -> tuple[Change, ...]:
    return (setup_state(event, event.object.get("last_setup_error")),)


def on_setup_intent_state(event: Event) -> tuple[Change, ...]:
    return (setup_state(event),)


# -- saved methods: details arrive with `attached`; `detached` is final ------------------------


def on_payment_method_attached(event: Event) -> tuple[Change, ...]:
    customer_id = ref_id(event.object.get("customer"))
    return _method_seen(event, customer_id=customer_id, attached_at=event.created)


def on_payment_method_detached(event: Event) -> tuple[Change, ...]:
    # The snapshot no longer names the customer; the row keeps the one it had.
    return _method_seen(event, detached_at=event.created)


def _method_seen(event: Event, **moment: Any) -> tuple[Change, ...]:
    """The method's details as of the event, with what the event says happened to it."""
    method = event.object
    return (
        MethodChange(
            required_id(method), details=method_details(method), details_at=event.created, **moment
        ),
    )


# -- payment intents: recovery cases and the charges ledger -----------------------------------


def payment_failure(event: Event) -> PaymentFailure:
    intent = event.object
    error = intent.get("last_payment_error")
    error = error if isinstance(error, Mapping) else {}
    amount = intent.get("amount")
    currency = intent.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        raise ValueError("payment intent without amount or currency")
    return PaymentFailure(
        payment_intent_id=required_id(intent),
        customer_id=ref_id(intent.get("customer")),
        payment_method_id=(
            ref_id(error.get("payment_method")) or ref_id(intent.get("payment_method"))
        ),
        amount=amount,
        currency=currency,
        code=text_or_none(error.get("code")),
        decline_code=text_or_none(error.get("decline_code")),
        message=text_or_none(error.get("message")),
        failed_at=event.created,
        charge_id=ref_id(intent.get("latest_charge")) or ref_id(error.get("charge")),
    )


def intent_outcome(event: Event, outcome: Settlement) -> IntentOutcome:
    reference = value_of(event.object, "metadata", "reference")
    return IntentOutcome(
        payment_intent_id=required_id(event.object),
        reference=reference if isinstance(reference, str) else None,
        outcome=outcome,
        at=event.created,
    )


def on_payment_intent_payment_failed(event: Event) -> tuple[Change, ...]:
    return payment_failure(event), intent_outcome(event, "failed")


def on_payment_intent_succeeded(event: Event) -> tuple[Change, ...]:
    return (intent_outcome(event, "succeeded"),)


def on_payment_intent_canceled(event: Event) -> tuple[Change, ...]:
    return (intent_outcome(event, "canceled"),)


REDUCERS: dict[str, Reducer] = {
    # Saving a method: the setup attempt's state, and the method a success names
    # (the checkout endpoint writes the same rows; events may arrive before it answers).
    "setup_intent.succeeded": on_setup_intent_succeeded,
    "setup_intent.setup_failed": on_setup_intent_setup_failed,
    "setup_intent.requires_action": on_setup_intent_state,
    "setup_intent.canceled": on_setup_intent_state,
    # The saved method itself: its details arrive with `attached`; `detached` is final.
    "payment_method.attached": on_payment_method_attached,
    "payment_method.detached": on_payment_method_detached,
    # Off-session charges and their recovery: a failure opens or updates the case and
    # queues its first email; success or cancellation closes it and stops the reminders.
    "payment_intent.payment_failed": on_payment_intent_payment_failed,
    "payment_intent.succeeded": on_payment_intent_succeeded,
    "payment_intent.canceled": on_payment_intent_canceled,
}

HANDLED_TYPES: tuple[str, ...] = tuple(REDUCERS)
