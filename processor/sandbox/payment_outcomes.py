"""What a payment attempt ends in: charged, declined (402 or, for SEPA, events only),
waiting for 3-D Secure, or `processing` until a SEPA debit settles.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox import balance_transactions, captures, cards, charges, disputes, intents
from processor.sandbox.cards import Decline, TestCard
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, unexpected_state
from processor.sandbox.ids import new_id
from processor.sandbox.payment_methods import attach, decline_error
from processor.sandbox.store import StripeObject, public

AUTH_FAILED_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)


def decline_before_authentication(
    card: TestCard, method: StripeObject, off_session: bool
) -> Decline | None:
    if card.refused is not None:
        return card.refused
    if off_session and (
        card.off_session == cards.AUTH
        or (card.off_session == cards.AUTH_UNLESS_SET_UP and not method["_set_up"])
    ):
        return cards.AUTH_REQUIRED
    return None


def charge_after_authentication(
    call: Call, intent: StripeObject, method: StripeObject, *, raise_error: bool
) -> None:
    """The card is cleared to charge: it succeeds unless the card declines every charge."""
    card: TestCard = method["_card"]
    decline = charge_decline(card, method)
    if decline is not None:
        fail(call, intent, method, decline, raise_error=raise_error)
        return
    charge = charges.create(call, intent, method, "succeeded")
    if intent["capture_method"] == "manual":
        keep_method(call, intent, method)
        captures.hold(call, intent, charge)
        return
    succeed(call, intent, method, charge)


def charge_decline(card: TestCard, method: StripeObject) -> Decline | None:
    """The card's charge decline, counted per saved method for cards that approve later."""
    if card.charge_decline is None or card.declines_before_success is None:
        return card.charge_decline
    declined = int(method.get("_charges_declined", 0))
    if declined >= card.declines_before_success:
        return None
    method["_charges_declined"] = declined + 1
    return card.charge_decline


def succeed(call: Call, intent: StripeObject, method: StripeObject, charge: StripeObject) -> None:
    intents.record_charge(intent, charge, "succeeded", amount_received=intent["amount"])
    keep_method(call, intent, method)
    balance_transactions.for_charge(call, charge)
    call.store.touch()
    call.emit("charge.succeeded", charge)
    call.emit("payment_intent.succeeded", intent)
    disputes.open_if_dispute_card(call, charge)


def keep_method(call: Call, intent: StripeObject, method: StripeObject) -> None:
    """Save the method for later when asked to (`setup_future_usage`); else it is spent."""
    if intent["setup_future_usage"] and intent["customer"]:
        attach(call, method, intent["customer"])
        method["_set_up"] = True
    elif method["customer"] is None:
        method["_consumed"] = True


def fail(
    call: Call,
    intent: StripeObject,
    method: StripeObject,
    decline: Decline,
    *,
    raise_error: bool,
    charge: StripeObject | None = None,
) -> None:
    if charge is None:
        charge = charges.create(call, intent, method, "failed", decline)
    error = decline_error(decline, charge=charge["id"], payment_method=public(method))
    intent.update(
        status="requires_payment_method",
        latest_charge=charge["id"],
        next_action=None,
        payment_method=None,
        last_payment_error=error.error_object(),
    )
    if method["customer"] is None:
        method["_consumed"] = True
    call.store.touch()
    call.emit("charge.failed", charge)
    call.emit("payment_intent.payment_failed", intent)
    if raise_error:
        error.extra = {"payment_intent": intents.view(call, intent), **error.extra}
        raise error


def start_processing(call: Call, intent: StripeObject, method: StripeObject) -> None:
    if intent["currency"] != "eur":
        raise invalid_request(
            "The currency provided ({}) is invalid. Payments with sepa_debit support the "
            "following currencies: eur.".format(intent["currency"]),
            param="payment_method",
            code="payment_intent_invalid_parameter",
        )
    intent["_mandate"] = intent.get("_mandate") or new_id("mandate")
    charge = charges.create(call, intent, method, "pending")
    intent.update(
        status="processing",
        latest_charge=charge["id"],
        next_action=None,
        processing=None,
    )
    if intent["setup_future_usage"] and intent["customer"]:
        attach(call, method, intent["customer"])
        method["_set_up"] = True
    call.store.touch()
    call.emit("payment_intent.processing", intent)
    call.emit("charge.pending", charge)
    if call.processing_started is not None:
        call.processing_started(intent["id"])


def settle(call: Call, intent: StripeObject) -> None:
    """Finish a SEPA debit: the IBAN decides between succeeded and failed (no 402, events only)."""
    if intent["status"] != "processing":
        raise unexpected_state("payment_intent", intent["id"], intent["status"], "settle")
    charge = call.store.require("charge", intent["latest_charge"])
    method = call.store.require("payment_method", charge["payment_method"])
    failure = method["_iban"].failure
    if failure is None:
        charges.succeed(charge)
        succeed(call, intent, method, charge)
        return
    charges.fail(charge, failure)
    fail(call, intent, method, failure, raise_error=False, charge=charge)


def fail_authentication(call: Call, intent: StripeObject, method: StripeObject) -> None:
    error: dict[str, Any] = {
        "type": "invalid_request_error",
        "code": "payment_intent_authentication_failure",
        "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
        "message": AUTH_FAILED_MESSAGE,
        "payment_method": public(method),
    }
    intent.update(
        status="requires_payment_method",
        next_action=None,
        payment_method=None,
        last_payment_error=error,
    )
    call.store.touch()
    call.emit("payment_intent.payment_failed", intent)
