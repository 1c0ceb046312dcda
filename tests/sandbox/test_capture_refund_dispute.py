"""Manual capture, refunds, Stripe's dispute test cards, and `POST /v1/payment_methods`."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle


def _event_types(sandbox: SandboxHandle) -> list[str]:
    return [event.type for event in reversed(sandbox.client.v1.events.list({"limit": 100}).data)]


def _authorised(sandbox: SandboxHandle, amount: int = 2000) -> Any:
    return sandbox.client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )


def test_manual_capture_holds_then_captures(sandbox: SandboxHandle) -> None:
    intent = _authorised(sandbox)
    held = sandbox.client.v1.charges.retrieve(str(intent.latest_charge))

    captured = sandbox.client.v1.payment_intents.capture(intent.id)
    charge = sandbox.client.v1.charges.retrieve(str(intent.latest_charge))

    assert (intent.status, intent.amount_capturable, intent.amount_received) == (
        "requires_capture",
        2000,
        0,
    )
    assert (held.captured, held.amount_captured) == (False, 0)
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        2000,
        0,
    )
    assert (charge.captured, charge.amount_captured) == (True, 2000)
    assert _event_types(sandbox) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
    ]


def test_a_partial_capture_releases_the_rest(sandbox: SandboxHandle) -> None:
    intent = _authorised(sandbox)

    captured = sandbox.client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 1500})
    charge = sandbox.client.v1.charges.retrieve(str(intent.latest_charge))

    assert captured.amount_received == 1500
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (1500, 500, False)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.capture(intent.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_capturing_more_than_authorised_is_refused(sandbox: SandboxHandle) -> None:
    intent = _authorised(sandbox)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.capture(intent.id, {"amount_to_capture": 2001})

    assert raised.value.param == "amount_to_capture"
    assert sandbox.client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"


def test_refunds_in_parts_then_in_full(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("refund@example.com")
    intent = sandbox.client.v1.payment_intents.create(
        {
            "amount": 1000,
            "currency": "usd",
            "customer": customer,
            "payment_method": method,
            "off_session": True,
            "confirm": True,
        }
    )

    part = sandbox.client.v1.refunds.create({"payment_intent": intent.id, "amount": 300})
    rest = sandbox.client.v1.refunds.create({"charge": str(intent.latest_charge)})
    charge = sandbox.client.v1.charges.retrieve(str(intent.latest_charge))
    with pytest.raises(stripe.InvalidRequestError) as again:
        sandbox.client.v1.refunds.create({"payment_intent": intent.id})

    assert (part.amount, part.status, part.charge) == (300, "succeeded", intent.latest_charge)
    assert rest.amount == 700
    assert sandbox.client.v1.refunds.retrieve(part.id).id == part.id
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    assert again.value.code == "charge_already_refunded"
    assert _event_types(sandbox).count("charge.refunded") == 2
    assert _event_types(sandbox).count("refund.created") == 2


@pytest.mark.parametrize(
    ("magic_id", "status", "reason"),
    [
        ("pm_card_createDispute", "needs_response", "fraudulent"),
        ("pm_card_createDisputeInquiry", "warning_needs_response", "fraudulent"),
        ("pm_card_createDisputeProductNotReceived", "needs_response", "product_not_received"),
    ],
)
def test_dispute_cards_open_a_dispute(
    sandbox: SandboxHandle, magic_id: str, status: str, reason: str
) -> None:
    intent = sandbox.client.v1.payment_intents.create(
        {
            "amount": 100,
            "currency": "usd",
            "payment_method": magic_id,
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )

    (event,) = sandbox.client.v1.events.list({"type": "charge.dispute.created"}).data
    dispute = event.data.object
    charge = sandbox.client.v1.charges.retrieve(str(intent.latest_charge))
    assert intent.status == "succeeded"
    assert (dispute["status"], dispute["reason"]) == (status, reason)
    assert (dispute["charge"], dispute["payment_intent"]) == (charge.id, intent.id)
    assert dispute["amount"] == 100
    assert charge.disputed is True


def test_payment_methods_are_created_from_details(sandbox: SandboxHandle) -> None:
    sepa = sandbox.client.v1.payment_methods.create(
        {
            "type": "sepa_debit",
            "sepa_debit": {"iban": "AT321904300235473204"},
            "billing_details": {"name": "Bob", "email": "bob@example.com"},
            "metadata": {"source": "test"},
        }
    )
    card = sandbox.client.v1.payment_methods.create(
        {"type": "card", "card": {"token": "tok_visa"}}
    )

    assert sepa.type == "sepa_debit" and sepa.sepa_debit is not None
    assert sepa.sepa_debit.last4 == "3204"
    assert sepa.billing_details.name == "Bob"
    assert sepa.customer is None
    assert sepa.metadata.to_dict() == {"source": "test"}
    assert card.card is not None and card.card.last4 == "4242"
    assert sandbox.client.v1.payment_methods.retrieve(card.id).id == card.id
    assert _event_types(sandbox) == []
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_nope"}})
    assert raised.value.param == "card[token]"


def test_payment_method_errors_name_this_endpoints_parameters(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sandbox.client.v1.payment_methods.create({"type": "sepa_debit"})
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        sandbox.client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": "DE00123"}}
        )

    assert missing.value.param == "sepa_debit[iban]"
    assert "Missing required param: sepa_debit[iban]." in str(missing.value)
    assert invalid.value.param == "sepa_debit[iban]"
    assert invalid.value.code == "invalid_bank_account_iban"
