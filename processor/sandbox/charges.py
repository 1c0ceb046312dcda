"""Charges: one per payment attempt that reached the card network or the bank."""

from __future__ import annotations

from typing import Any

from processor.sandbox.cards import Decline
from processor.sandbox.context import Call
from processor.sandbox.ids import new_id
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import reject_unknown

OUTCOMES = {
    "succeeded": {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "Payment complete.",
        "type": "authorized",
    },
    "pending": None,
}


def _details(method: StripeObject, mandate: str | None) -> dict[str, Any]:
    if method["type"] == "card":
        card = method["card"]
        return {
            "type": "card",
            "card": {
                "amount_authorized": None,
                "authorization_code": None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "electronic_commerce_indicator": None,
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "network": card["brand"],
                "network_transaction_id": None,
                "regulated_status": card["regulated_status"],
                "three_d_secure": None,
                "transaction_link_id": None,
                "wallet": None,
            },
        }
    sepa = method["sepa_debit"]
    return {
        "type": "sepa_debit",
        "sepa_debit": {
            "bank_code": sepa["bank_code"],
            "branch_code": sepa["branch_code"],
            "country": sepa["country"],
            "fingerprint": sepa["fingerprint"],
            "last4": sepa["last4"],
            "mandate": mandate,
        },
    }


def create(
    call: Call,
    intent: StripeObject,
    method: StripeObject,
    status: str,
    decline: Decline | None = None,
) -> StripeObject:
    """Store a charge for `intent` and record it as an executed charge attempt."""
    charge: StripeObject = {
        "id": new_id("ch"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if status == "succeeded" else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": "SANDBOX",
        "captured": status == "succeeded",
        "created": call.now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": OUTCOMES.get(status),
        "paid": status == "succeeded",
        "payment_intent": intent["id"],
        "payment_method": method["id"],
        "payment_method_details": _details(method, intent.get("_mandate")),
        "receipt_email": intent.get("receipt_email"),
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": intent.get("shipping"),
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent.get("statement_descriptor"),
        "statement_descriptor_suffix": intent.get("statement_descriptor_suffix"),
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }
    if decline is not None:
        fail(charge, decline)
    call.store.add(charge)
    call.charged(charge)
    return charge


def fail(charge: StripeObject, decline: Decline) -> None:
    charge.update(
        status="failed",
        paid=False,
        captured=False,
        amount_captured=0,
        failure_code=decline.decline_code if decline.code == "card_declined" else decline.code,
        failure_message=decline.message,
        outcome={
            "advice_code": decline.advice_code,
            "network_advice_code": decline.network_advice_code,
            "network_decline_code": decline.network_decline_code,
            "network_status": "declined_by_network",
            "reason": decline.decline_code or decline.code,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        },
    )


def succeed(charge: StripeObject) -> None:
    charge.update(
        status="succeeded",
        paid=True,
        captured=True,
        amount_captured=charge["amount"],
        outcome=OUTCOMES["succeeded"],
    )


def retrieve(call: Call) -> StripeObject:
    reject_unknown(call.params, frozenset({"expand"}))
    return public(call.store.require("charge", call.path_args["id"]))
