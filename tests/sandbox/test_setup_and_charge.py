"""Each test card at setup and in a later off-session charge, through stripe-python."""

from __future__ import annotations

import pytest
import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle


def _off_session(sandbox: SandboxHandle, customer: str, method: str, **extra: object):
    params = {
        "amount": 1999,
        "currency": "usd",
        "customer": customer,
        "payment_method": method,
        "off_session": True,
        "confirm": True,
        **extra,
    }
    return sandbox.client.v1.payment_intents.create(params)


@pytest.mark.parametrize(
    "card", ["pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_threeDSecureOptional"]
)
def test_frictionless_cards_set_up_and_charge(sandbox: SandboxHandle, card: str) -> None:
    customer, method = sandbox.saved_card("ok@example.com", card)

    intent = _off_session(sandbox, customer, method)

    assert intent.status == "succeeded"
    assert intent.amount_received == 1999
    charge = sandbox.control.get(intent.latest_charge)
    assert charge["status"] == "succeeded"
    assert [a.status for a in sandbox.control.charges_for(payment_intent=intent.id)] == [
        "succeeded"
    ]


def test_saved_method_is_attached_and_listed(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("list@example.com")

    listed = sandbox.client.v1.customers.payment_methods.list(customer, {"type": "card"})
    by_type = sandbox.client.v1.payment_methods.list({"customer": customer, "type": "card"})

    assert [m.id for m in listed.data] == [method]
    assert [m.id for m in by_type.data] == [method]
    assert listed.data[0].customer == customer
    assert listed.data[0].card.last4 == "4242"
