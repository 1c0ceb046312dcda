"""Manual capture: an authorised charge held in `requires_capture`, then captured in full or
in part (the rest goes back to the card, as Stripe refunds it).
"""

from __future__ import annotations

from processor.sandbox import balance_transactions, disputes, intents
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, unexpected_state
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import as_int, merge_metadata, reject_unknown

CAPTURE_PARAMS = frozenset(
    {
        "amount_to_capture",
        "application_fee_amount",
        "expand",
        "final_capture",
        "metadata",
        "statement_descriptor",
        "statement_descriptor_suffix",
    }
)


def hold(call: Call, intent: StripeObject, charge: StripeObject) -> None:
    """The card is authorised but not charged: the intent waits in `requires_capture`."""
    charge.update(captured=False, amount_captured=0)
    intents.record_charge(intent, charge, "requires_capture", amount_capturable=intent["amount"])
    call.store.touch()
    call.emit("charge.succeeded", charge)
    call.emit("payment_intent.amount_capturable_updated", intent)


def capture(call: Call) -> StripeObject:
    """`POST /v1/payment_intents/{id}/capture`."""
    params = call.params
    reject_unknown(params, CAPTURE_PARAMS)
    intent = call.store.require("payment_intent", call.path_args["id"])
    if intent["status"] != "requires_capture":
        raise unexpected_state("payment_intent", intent["id"], intent["status"], "capture")
    amount = as_int(params, "amount_to_capture")
    capturable = intent["amount_capturable"]
    if amount is None:
        amount = capturable
    if not 0 < amount <= capturable:
        raise invalid_request(
            f"The amount to capture must be between 1 and the capturable amount ({capturable}).",
            param="amount_to_capture",
            code="amount_too_large" if amount > capturable else "parameter_invalid_integer",
        )
    metadata = merge_metadata(intent["metadata"], params.get("metadata"))
    charge = call.store.require("charge", intent["latest_charge"])
    charge.update(
        captured=True,
        amount_captured=amount,
        amount_refunded=charge["amount"] - amount,
        refunded=False,
    )
    balance_transactions.for_charge(call, charge)
    intent.update(
        status="succeeded", amount_capturable=0, amount_received=amount, metadata=metadata
    )
    call.store.touch()
    call.emit("charge.captured", charge)
    call.emit("payment_intent.succeeded", intent)
    disputes.open_if_dispute_card(call, charge)
    return intents.view(call, intent)
