"""Stripe's error shapes and statuses, and the exception stripe-python raises for each."""

from __future__ import annotations

import pytest
import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle
from tests.sandbox.flows import charge_off_session


def test_off_session_decline_body_matches_stripe(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("body@example.com", "pm_card_authenticationRequired")

    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer, method)

    error = raised.value
    body = error.json_body["error"]
    assert body["type"] == "card_error"
    assert body["code"] == "authentication_required"
    assert body["decline_code"] == "authentication_required"
    assert body["message"] == "Your card was declined. This transaction requires authentication."
    assert body["doc_url"] == "https://stripe.com/docs/error-codes/authentication-required"
    assert body["request_log_url"].endswith(error.request_id)
    assert body["charge"].startswith("ch_")
    assert body["payment_intent"]["object"] == "payment_intent"
    assert body["payment_intent"]["latest_charge"] == body["charge"]
    assert body["payment_intent"]["last_payment_error"]["code"] == "authentication_required"
    assert "payment_intent" not in body["payment_intent"]["last_payment_error"]
    assert body["payment_method"]["id"] == method
    assert None not in body.values()
    assert error.request_id.startswith("req_")
    assert str(error).startswith(f"Request {error.request_id}: ")
    assert error.user_message == body["message"]


def test_payment_method_types_is_refused(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.setup_intents.create({"payment_method_types": ["card"]})  # type: ignore[typeddict-unknown-key]

    assert raised.value.http_status == 400
    assert raised.value.code == "payment_method_types_no_longer_supported"
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.payment_intents.create(
            {"amount": 100, "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
        )


def test_unknown_parameter(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.customers.create({"favourite_colour": "blue"})  # type: ignore[typeddict-unknown-key]

    assert raised.value.code == "parameter_unknown"
    assert raised.value.param == "favourite_colour"


def test_missing_object_is_404_resource_missing(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.retrieve("pi_doesnotexist")

    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert str(raised.value).endswith("No such payment_intent: 'pi_doesnotexist'")


def test_missing_object_named_in_a_parameter_is_400(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.setup_intents.create({"customer": "cus_nobody"})

    assert raised.value.http_status == 400
    assert raised.value.code == "resource_missing"
    assert raised.value.param == "customer"


@pytest.mark.parametrize(
    ("amount", "currency"), [(49, "usd"), (49, "eur"), (49, "jpy"), (29, "gbp")]
)
def test_amount_below_minimum(sandbox: SandboxHandle, amount: int, currency: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.create({"amount": amount, "currency": currency})

    assert raised.value.code == "amount_too_small"
    assert raised.value.param == "amount"


def test_minimum_amount_is_accepted(sandbox: SandboxHandle) -> None:
    intent = sandbox.client.v1.payment_intents.create({"amount": 50, "currency": "jpy"})

    assert intent.status == "requires_payment_method"
    assert intent.amount == 50


def test_off_session_needs_confirm(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.create(
            {"amount": 100, "currency": "usd", "off_session": True}
        )

    assert raised.value.param == "off_session"


def test_setup_future_usage_must_be_a_known_value(sandbox: SandboxHandle) -> None:
    intent = sandbox.client.v1.payment_intents.create({"amount": 100, "currency": "usd"})

    with pytest.raises(stripe.InvalidRequestError) as on_update:
        sandbox.client.v1.payment_intents.update(intent.id, {"setup_future_usage": "sometimes"})  # type: ignore[typeddict-item]
    with pytest.raises(stripe.InvalidRequestError) as on_confirm:
        sandbox.client.v1.payment_intents.confirm(
            intent.id,
            {"payment_method": "pm_card_visa", "setup_future_usage": "sometimes"},  # type: ignore[typeddict-item]
        )

    assert on_update.value.param == on_confirm.value.param == "setup_future_usage"
    unchanged = sandbox.client.v1.payment_intents.retrieve(intent.id)
    assert unchanged.status == "requires_payment_method"
    assert unchanged.setup_future_usage is None
    assert unchanged.latest_charge is None


def test_a_refused_update_changes_nothing(sandbox: SandboxHandle) -> None:
    payment = sandbox.client.v1.payment_intents.create({"amount": 100, "currency": "usd"})
    setup = sandbox.client.v1.setup_intents.create({})

    with pytest.raises(stripe.InvalidRequestError) as bad_customer:
        sandbox.client.v1.payment_intents.update(
            payment.id, {"amount": 500, "customer": "cus_missing"}
        )
    with pytest.raises(stripe.InvalidRequestError) as bad_method:
        sandbox.client.v1.setup_intents.update(
            setup.id, {"description": "changed", "payment_method": "pm_missing"}
        )

    assert bad_customer.value.param == "customer"
    assert bad_method.value.param == "payment_method"
    assert sandbox.client.v1.payment_intents.retrieve(payment.id).amount == 100
    assert sandbox.client.v1.setup_intents.retrieve(setup.id).description is None


def test_return_url_needed_when_redirects_are_allowed(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_visa"}
    )

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.setup_intents.create(
            {"customer": customer.id, "confirm": True, "confirmation_token": token.id}
        )

    assert raised.value.param == "return_url"
    assert "must be specified" in str(raised.value)
    # Nothing was created and the token is still usable.
    assert sandbox.client.v1.setup_intents.list().data == []
    intent = sandbox.client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "confirmation_token": token.id,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    assert intent.status == "succeeded"


def test_confirming_a_succeeded_intent(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("twice@example.com")
    intent = charge_off_session(sandbox, customer, method)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.confirm(intent.id, {"payment_method": method})

    assert raised.value.code == "payment_intent_unexpected_state"


def test_cancel_rules(sandbox: SandboxHandle) -> None:
    open_intent = sandbox.client.v1.payment_intents.create({"amount": 100, "currency": "usd"})
    customer, method = sandbox.saved_card("cancel@example.com")
    paid = charge_off_session(sandbox, customer, method)

    canceled = sandbox.client.v1.payment_intents.cancel(
        open_intent.id, {"cancellation_reason": "abandoned"}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.cancel(paid.id)

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert raised.value.code == "payment_intent_unexpected_state"
    assert [e["type"] for e in sandbox.control.events].count("payment_intent.canceled") == 1


def test_cancel_setup_intent(sandbox: SandboxHandle) -> None:
    intent = sandbox.client.v1.setup_intents.create({})

    canceled = sandbox.client.v1.setup_intents.cancel(intent.id)

    assert canceled.status == "canceled"


def test_wrong_or_missing_key_is_401(sandbox: SandboxHandle) -> None:
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": sandbox.url})

    with pytest.raises(stripe.AuthenticationError) as raised:
        wrong.v1.customers.list()

    assert raised.value.http_status == 401
    assert "Invalid API Key provided" in str(raised.value)
    assert "sk_test_wrong" not in str(raised.value)


def test_live_keys_are_refused(sandbox: SandboxHandle) -> None:
    live = stripe.StripeClient("sk_live_" + "x" * 24, base_addresses={"api": sandbox.url})

    with pytest.raises(stripe.AuthenticationError):
        live.v1.customers.list()


def test_live_keys_are_refused_at_construction() -> None:
    from processor.sandbox import create_sandbox_app

    with pytest.raises(ValueError, match="live"):
        create_sandbox_app(secret_key="sk_live_abc")
    with pytest.raises(ValueError, match="live"):
        create_sandbox_app(publishable_key="pk_live_abc")


def test_every_answer_has_a_request_id(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})

    assert customer.last_response.request_id.startswith("req_")
    assert customer.last_response.headers["Stripe-Version"] == stripe.api_version


def test_intent_in_use_is_retrievable_with_expand(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("expand@example.com")
    intent = charge_off_session(sandbox, customer, method)

    expanded = sandbox.client.v1.payment_intents.retrieve(
        intent.id, {"expand": ["latest_charge", "payment_method", "customer"]}
    )

    assert expanded.latest_charge.object == "charge"
    assert expanded.payment_method.card.last4 == "4242"
    assert expanded.customer.email == "expand@example.com"
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.payment_intents.retrieve(intent.id, {"expand": ["status"]})


def test_return_url_constant_is_absolute() -> None:
    assert RETURN_URL.startswith("https://")
