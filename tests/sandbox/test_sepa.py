"""SEPA Direct Debit: `processing`, then settled by the sandbox with events only (no 402)."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle
from tests.sandbox.flows import charge_off_session, event_types


@pytest.mark.parametrize(
    ("method", "status", "events"),
    [
        ("pm_sepaDebit_success_de", "succeeded", ["payment_intent.succeeded"]),
        ("pm_sepaDebit_failed_de", "requires_payment_method", ["payment_intent.payment_failed"]),
    ],
)
def test_sepa_debit_settles(
    sandbox: SandboxHandle, method: str, status: str, events: list[str]
) -> None:
    sandbox.control.set_sepa_settlement_delay(None)
    customer, saved = sandbox.saved_card("sepa@example.com", method)

    intent = charge_off_session(sandbox, customer, saved, amount=1500, currency="eur")
    assert intent.status == "processing"
    assert event_types(sandbox, intent.id) == [
        "payment_intent.created",
        "payment_intent.processing",
    ]
    assert sandbox.client.v1.charges.retrieve(intent.latest_charge).status == "pending"

    assert sandbox.control.settle_processing() == [intent.id]

    settled = sandbox.client.v1.payment_intents.retrieve(intent.id)
    assert settled.status == status
    assert event_types(sandbox, intent.id)[2:] == events
    [attempt] = sandbox.control.charges_for(payment_intent=intent.id)
    assert attempt.status == ("succeeded" if status == "succeeded" else "failed")
    if status != "succeeded":
        assert settled.last_payment_error.payment_method.id == saved
        assert settled.payment_method is None


def test_sepa_settles_by_itself_after_the_delay(sandbox: SandboxHandle) -> None:
    sandbox.control.set_sepa_settlement_delay(0.1)
    customer, saved = sandbox.saved_card("auto@example.com", "pm_sepaDebit_success_de")

    intent = charge_off_session(sandbox, customer, saved, amount=1500, currency="eur")

    deadline = time.monotonic() + 5
    while sandbox.client.v1.payment_intents.retrieve(intent.id).status == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sandbox.client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_sepa_through_a_confirmation_token_iban(sandbox: SandboxHandle) -> None:
    sandbox.control.set_sepa_settlement_delay(None)
    customer = sandbox.client.v1.customers.create({"email": "iban@example.com"})
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {
            "payment_method_data": {
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE62370400440532013001"},
                "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"},
            }
        }
    )
    setup = sandbox.client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "confirmation_token": token.id,
            "return_url": RETURN_URL,
        }
    )
    assert setup.status == "succeeded"
    assert setup.mandate.startswith("mandate_")
    [saved] = sandbox.client.v1.payment_methods.list(
        {"customer": customer.id, "type": "sepa_debit"}
    ).data

    intent = charge_off_session(sandbox, customer.id, saved.id, amount=2000, currency="eur")
    sandbox.control.settle(intent.id)

    failed = sandbox.client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.type == "card_error"


def test_sepa_needs_euros(sandbox: SandboxHandle) -> None:
    customer, saved = sandbox.saved_card("usd@example.com", "pm_sepaDebit_success_de")

    with pytest.raises(stripe.InvalidRequestError):
        charge_off_session(sandbox, customer, saved, amount=1500, currency="usd")
