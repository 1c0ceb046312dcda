"""Balance transactions: what a captured charge or a refund moves on the account's balance.

Fees follow Stripe's standard card pricing (2.9% + 30 minor units); SEPA debits pay a flat
35. Funds become available two days later, as test mode shows them.
"""

from __future__ import annotations

from processor.sandbox.context import Call
from processor.sandbox.ids import new_id
from processor.sandbox.store import StripeObject

AVAILABLE_AFTER_SECONDS = 2 * 24 * 3600


def _fee(charge: StripeObject, amount: int) -> int:
    if charge["payment_method_details"]["type"] == "sepa_debit":
        return min(35, amount)
    return min(round(amount * 0.029) + 30, amount)


def _record(
    call: Call, *, amount: int, fee: int, currency: str, source: str, kind: str, category: str
) -> StripeObject:
    details = [
        {
            "amount": fee,
            "application": None,
            "currency": currency,
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    transaction: StripeObject = {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": call.now + AVAILABLE_AFTER_SECONDS,
        "balance_type": "payments",
        "created": call.now,
        "currency": currency,
        "description": None,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": details if fee else [],
        "net": amount - fee,
        "reporting_category": category,
        "source": source,
        "status": "pending",
        "type": kind,
    }
    return call.store.add(transaction)


def for_charge(call: Call, charge: StripeObject) -> str:
    """Record the captured amount of `charge` once; answers the transaction's id."""
    if charge["balance_transaction"] is None:
        amount = charge["amount_captured"]
        kind = "payment" if charge["payment_method_details"]["type"] == "sepa_debit" else "charge"
        charge["balance_transaction"] = _record(
            call,
            amount=amount,
            fee=_fee(charge, amount),
            currency=charge["currency"],
            source=charge["id"],
            kind=kind,
            category="charge",
        )["id"]
    return str(charge["balance_transaction"])


def for_refund(call: Call, refund: StripeObject) -> str:
    return str(
        _record(
            call,
            amount=-refund["amount"],
            fee=0,
            currency=refund["currency"],
            source=refund["id"],
            kind="refund",
            category="refund",
        )["id"]
    )
