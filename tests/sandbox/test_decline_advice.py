"""Declines carry Stripe's retry advice, and the two sandbox cards the retry ladder is tested with."""

from __future__ import annotations

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.flows import charge_off_session

# refused card -> (advice_code, network_decline_code)
REFUSED_ADVICE = {
    "pm_card_chargeDeclined": ("try_again_later", "05"),
    "pm_card_chargeDeclinedInsufficientFunds": ("try_again_later", "51"),
    "pm_card_visa_chargeDeclinedLostCard": ("do_not_try_again", "41"),
    "pm_card_visa_chargeDeclinedStolenCard": ("do_not_try_again", "43"),
    "pm_card_chargeDeclinedExpiredCard": ("confirm_card_data", "54"),
    "pm_card_chargeDeclinedIncorrectCvc": ("confirm_card_data", "N7"),
    "pm_card_chargeDeclinedProcessingError": ("try_again_later", "96"),
    "pm_card_visa_chargeDeclinedVelocityLimitExceeded": ("try_again_later", "61"),
    "pm_card_radarBlock": ("do_not_try_again", "59"),
}


def _declined_off_session(sandbox: SandboxHandle, customer: str, method: str) -> stripe.CardError:
    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(sandbox, customer, method)
    return caught.value


@pytest.mark.parametrize("card", list(REFUSED_ADVICE))
def test_refused_cards_carry_advice(sandbox: SandboxHandle, card: str) -> None:
    advice, network_code = REFUSED_ADVICE[card]
    customer = sandbox.client.v1.customers.create({"email": "advice@example.com"})

    with pytest.raises(stripe.CardError) as caught:
        sandbox.client.v1.payment_methods.attach(card, {"customer": customer.id})

    error = caught.value.error
    assert error is not None
    assert (error.advice_code, error.network_decline_code) == (advice, network_code)


def test_insufficient_funds_then_approved_on_the_same_intent(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card(
        "payday@example.com", "pm_card_sandbox_insufficientFundsThenSucceeds"
    )

    declined = _declined_off_session(sandbox, customer, method)

    assert declined.error is not None
    assert declined.code == "card_declined"
    assert declined.error.decline_code == "insufficient_funds"
    assert declined.error.advice_code == "try_again_later"
    assert declined.error.network_decline_code == "51"
    intent = declined.error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    charge = sandbox.client.v1.charges.retrieve(declined.error.charge)
    assert charge.outcome.advice_code == "try_again_later"
    assert charge.outcome.network_decline_code == "51"

    retried = sandbox.client.v1.payment_intents.confirm(
        intent.id, {"payment_method": method, "off_session": True}
    )

    assert retried.status == "succeeded"
    assert retried.id == intent.id


def test_the_approval_is_counted_per_saved_method(sandbox: SandboxHandle) -> None:
    card = "pm_card_sandbox_insufficientFundsThenSucceeds"
    customer, first = sandbox.saved_card("one@example.com", card)
    _declined_off_session(sandbox, customer, first)
    assert charge_off_session(sandbox, customer, first).status == "succeeded"

    other_customer, second = sandbox.saved_card("two@example.com", card)

    assert _declined_off_session(sandbox, other_customer, second).error is not None


def test_do_not_try_again_card_always_declines_with_that_advice(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card(
        "never@example.com", "pm_card_sandbox_chargeDeclinedDoNotTryAgain"
    )

    first = _declined_off_session(sandbox, customer, method)
    assert first.error is not None and first.error.payment_intent is not None
    with pytest.raises(stripe.CardError) as again:
        sandbox.client.v1.payment_intents.confirm(
            first.error.payment_intent.id, {"payment_method": method, "off_session": True}
        )

    for error in (first.error, again.value.error):
        assert error is not None
        assert error.decline_code == "do_not_honor"
        assert error.advice_code == "do_not_try_again"
        assert error.network_advice_code == "03"
        assert error.network_decline_code == "05"
