"""Refunds: `POST /v1/refunds` for a charge or a PaymentIntent's latest charge, and retrieve.

A card refund succeeds at once; the charge records the amount refunded.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox import balance_transactions, wire
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request
from processor.sandbox.ids import new_id
from processor.sandbox.store import StripeObject, public

CREATE_PARAMS = frozenset(
    {
        "amount",
        "charge",
        "currency",
        "customer",
        "expand",
        "instructions_email",
        "metadata",
        "origin",
        "payment_intent",
        "reason",
        "refund_application_fee",
        "reverse_transfer",
    }
)
REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _charge_to_refund(call: Call) -> StripeObject:
    charge_id = wire.as_str(call.params, "charge")
    intent_id = wire.as_str(call.params, "payment_intent")
    if charge_id is None and intent_id is None:
        raise wire.missing_param("charge")
    if charge_id is not None:
        return call.store.require("charge", charge_id, param="charge")
    intent = call.store.require("payment_intent", intent_id, param="payment_intent")
    if intent["latest_charge"] is None or intent["status"] != "succeeded":
        raise invalid_request(
            f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
            param="payment_intent",
        )
    return call.store.require("charge", intent["latest_charge"])


def _destination(charge: StripeObject) -> dict[str, Any]:
    """Where the money goes back: the card's network reference, or the bank account."""
    kind = charge["payment_method_details"]["type"]
    if kind == "card":
        return {
            "type": "card",
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "reference": "",
                "type": "refund",
            },
        }
    return {"type": kind}


def create(call: Call) -> StripeObject:
    params = call.params
    wire.reject_unknown(params, CREATE_PARAMS)
    charge = _charge_to_refund(call)
    reason = wire.as_choice(params, "reason", REASONS)
    # A partial capture already counts its released remainder as refunded.
    remaining = charge["amount"] - charge["amount_refunded"]
    if charge["status"] != "succeeded" or not charge["captured"] or remaining <= 0:
        raise invalid_request(
            f"Charge {charge['id']} has already been refunded."
            if charge["status"] == "succeeded" and charge["captured"]
            else f"Charge {charge['id']} has no captured amount to refund.",
            code="charge_already_refunded",
        )
    amount = wire.as_int(params, "amount")
    amount = remaining if amount is None else amount
    if not 0 < amount <= remaining:
        raise invalid_request(
            f"Refund amount ({amount}) is greater than the amount left to refund ({remaining}).",
            param="amount",
            code="amount_too_large",
        )
    refund: StripeObject = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": call.now,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": _destination(charge),
        "metadata": wire.merge_metadata({}, params.get("metadata")),
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    refund["balance_transaction"] = balance_transactions.for_refund(call, refund)
    call.store.add(refund)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    call.store.touch()
    call.emit("refund.created", refund)
    call.emit("charge.refunded", charge)
    return public(refund)


def retrieve(call: Call) -> StripeObject:
    wire.reject_unknown(call.params, frozenset({"expand"}))
    return public(call.store.require("refund", call.path_args["id"]))
