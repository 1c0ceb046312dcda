"""Each test card's outcome at setup and in a later off-session charge (STRIPE.md section 4)."""

from __future__ import annotations

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.flows import charge_off_session, event_types, set_up

# card -> (needs 3-D Secure at setup, off-session result: "succeeded" or (code, decline_code))
SAVEABLE = {
    "pm_card_visa": (False, "succeeded"),
    "pm_card_mastercard": (False, "succeeded"),
    "pm_card_amex": (False, "succeeded"),
    "pm_card_threeDSecureOptional": (False, "succeeded"),
    "pm_card_authenticationRequiredOnSetup": (True, "succeeded"),
    "pm_card_authenticationRequiredSetupForOffSession": (True, "succeeded"),
    "pm_card_authenticationRequired": (
        True,
        ("authentication_required", "authentication_required"),
    ),
    "pm_card_threeDSecure2Required": (
        True,
        ("authentication_required", "authentication_required"),
    ),
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": (
        True,
        ("card_declined", "insufficient_funds"),
    ),
    "pm_card_chargeCustomerFail": (False, ("card_declined", "generic_decline")),
}

# Cards issuers refuse: they cannot be saved at all.
REFUSED = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_visa_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_visa_chargeDeclinedLostCard": ("card_declined", "lost_card"),
    "pm_card_visa_chargeDeclinedStolenCard": ("card_declined", "stolen_card"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", None),
    "pm_card_chargeDeclinedIncorrectCvc": ("incorrect_cvc", None),
    "pm_card_chargeDeclinedProcessingError": ("processing_error", None),
}


@pytest.mark.parametrize("card", list(SAVEABLE))
def test_saveable_card_at_setup(sandbox: SandboxHandle, card: str) -> None:
    needs_authentication, _ = SAVEABLE[card]

    intent = set_up(sandbox, card)

    if needs_authentication:
        assert intent.status == "requires_action"
        assert intent.next_action.type == "use_stripe_sdk"
        assert intent.next_action.use_stripe_sdk["type"] == "stripe_3ds2_fingerprint"
        assert event_types(sandbox, intent.id) == [
            "setup_intent.created",
            "setup_intent.requires_action",
        ]
        sandbox.control.authenticate(intent.id, True)
        intent = sandbox.client.v1.setup_intents.retrieve(intent.id)
    assert intent.status == "succeeded"
    method = sandbox.client.v1.payment_methods.retrieve(intent.payment_method)
    assert method.customer == intent.customer
    assert event_types(sandbox, intent.id)[-1] == "setup_intent.succeeded"
    assert "payment_method.attached" in event_types(sandbox, method.id)


@pytest.mark.parametrize("card", list(SAVEABLE))
def test_saveable_card_off_session(sandbox: SandboxHandle, card: str) -> None:
    _, expected = SAVEABLE[card]
    customer, method = sandbox.saved_card("later@example.com", card)

    if expected == "succeeded":
        intent = charge_off_session(sandbox, customer, method)
        assert intent.status == "succeeded"
        assert event_types(sandbox, intent.id) == [
            "payment_intent.created",
            "payment_intent.succeeded",
        ]
        return
    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer, method)
    code, decline_code = expected
    error = raised.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error.decline_code == decline_code
    assert error.error.payment_intent.status == "requires_payment_method"
    assert error.error.payment_intent.last_payment_error.code == code
    assert error.error.payment_method.id == method
    assert error.error.charge.startswith("ch_")
    assert event_types(sandbox, error.error.payment_intent.id) == [
        "payment_intent.created",
        "payment_intent.payment_failed",
    ]
    [attempt] = sandbox.control.charges_for(payment_intent=error.error.payment_intent.id)
    assert attempt.status == "failed"


def test_authentication_required_fails_off_session_every_time(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("always@example.com", "pm_card_authenticationRequired")

    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            charge_off_session(sandbox, customer, method)
        assert raised.value.code == "authentication_required"


def test_authentication_required_on_setup_card_needs_auth_unless_set_up(
    sandbox: SandboxHandle,
) -> None:
    customer = sandbox.client.v1.customers.create({"email": "direct@example.com"})
    method = sandbox.client.v1.payment_methods.attach(
        "pm_card_authenticationRequiredOnSetup", {"customer": customer.id}
    )

    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer.id, method.id)

    assert raised.value.code == "authentication_required"


@pytest.mark.parametrize("card", list(REFUSED))
def test_refused_card_cannot_be_set_up(sandbox: SandboxHandle, card: str) -> None:
    code, decline_code = REFUSED[card]

    with pytest.raises(stripe.CardError) as raised:
        set_up(sandbox, card)

    error = raised.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error.decline_code == decline_code
    intent = error.error.setup_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_setup_error.code == code
    assert intent.payment_method is None
    assert error.error.payment_method.customer is None
    assert event_types(sandbox, intent.id) == ["setup_intent.created", "setup_intent.setup_failed"]
    assert sandbox.client.v1.customers.payment_methods.list(intent.customer).data == []


@pytest.mark.parametrize("card", ["pm_card_chargeDeclined", "pm_card_chargeDeclinedExpiredCard"])
def test_refused_card_cannot_be_attached(sandbox: SandboxHandle, card: str) -> None:
    customer = sandbox.client.v1.customers.create({})

    with pytest.raises(stripe.CardError) as raised:
        sandbox.client.v1.payment_methods.attach(card, {"customer": customer.id})

    assert raised.value.http_status == 402


def test_refused_card_used_directly_off_session_is_declined(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.CardError) as raised:
        sandbox.client.v1.payment_intents.create(
            {
                "amount": 500,
                "currency": "eur",
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
                "off_session": True,
                "confirm": True,
            }
        )

    assert raised.value.code == "card_declined"
    assert raised.value.error.decline_code == "insufficient_funds"


def test_failed_three_d_secure_at_setup(sandbox: SandboxHandle) -> None:
    intent = set_up(sandbox, "pm_card_authenticationRequired")

    sandbox.control.authenticate(intent.id, False)

    intent = sandbox.client.v1.setup_intents.retrieve(intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_setup_error.code == "setup_intent_authentication_failure"
    assert intent.last_setup_error.payment_method.type == "card"
    assert event_types(sandbox, intent.id)[-1] == "setup_intent.setup_failed"
    assert sandbox.client.v1.customers.payment_methods.list(intent.customer).data == []


def test_each_magic_id_makes_a_new_payment_method(sandbox: SandboxHandle) -> None:
    first = sandbox.saved_card("a@example.com")[1]
    second = sandbox.saved_card("b@example.com")[1]

    assert first != second
    assert first.startswith("pm_") and not first.startswith("pm_card_")


def test_detached_method_is_gone_for_good(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("detach@example.com")

    detached = sandbox.client.v1.payment_methods.detach(method)

    assert detached.customer is None
    assert sandbox.client.v1.customers.payment_methods.list(customer).data == []
    assert event_types(sandbox, method)[-1] == "payment_method.detached"
    with pytest.raises(stripe.InvalidRequestError):
        charge_off_session(sandbox, customer, method)


def test_method_of_another_customer_is_refused(sandbox: SandboxHandle) -> None:
    _, method = sandbox.saved_card("owner@example.com")
    stranger = sandbox.client.v1.customers.create({})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        charge_off_session(sandbox, stranger.id, method)

    assert raised.value.param == "payment_method"
    assert sandbox.control.charge_attempts == []


def test_jpy_is_zero_decimal(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("yen@example.com")

    intent = charge_off_session(sandbox, customer, method, amount=50, currency="jpy")

    assert intent.status == "succeeded"
    assert intent.amount_received == 50


def test_charge_event_order_for_success(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("order@example.com")

    intent = charge_off_session(sandbox, customer, method)

    types = [e["type"] for e in sandbox.control.events]
    tail = types[types.index("payment_intent.created") :]
    assert tail == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    assert sandbox.client.v1.charges.retrieve(intent.latest_charge).payment_intent == intent.id
