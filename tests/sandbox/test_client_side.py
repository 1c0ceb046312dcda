"""The routes Stripe.js uses: publishable key plus the intent's client secret.

stripe-python is pointed at the sandbox with the publishable key, as Stripe.js would be.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle
from tests.sandbox.flows import charge_off_session, event_types, publishable_client


def _card_token(client: stripe.StripeClient, number: str, **card: Any) -> Any:
    details = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123", **card}
    return client.raw_request(
        "post",
        "/v1/confirmation_tokens",
        payment_method_data={
            "type": "card",
            "card": details,
            "billing_details": {"name": "Jo Doe", "email": "jo@example.com"},
        },
        return_url=RETURN_URL,
    )


def _create_token(sandbox: SandboxHandle, number: str, **card: Any) -> Any:
    client = publishable_client(sandbox)
    return client.deserialize(_card_token(client, number, **card), api_mode="V1")


def _setup_with(sandbox: SandboxHandle, token_id: str) -> Any:
    customer = sandbox.client.v1.customers.create({"email": "web@example.com"})
    return sandbox.client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "confirmation_token": token_id,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )


def test_card_number_token_behaves_like_its_magic_id(sandbox: SandboxHandle) -> None:
    token = _create_token(sandbox, "4000002760003184")

    assert token.object == "confirmation_token"
    assert token.expires_at == token.created + 12 * 3600
    assert token.payment_method_preview.card.last4 == "3184"
    assert token.payment_method_preview.billing_details.name == "Jo Doe"
    intent = _setup_with(sandbox, token.id)
    assert intent.status == "requires_action"


def test_any_other_valid_number_behaves_like_4242(sandbox: SandboxHandle) -> None:
    token = _create_token(sandbox, "4012888888881881")

    intent = _setup_with(sandbox, token.id)

    assert intent.status == "succeeded"
    assert sandbox.client.v1.payment_methods.retrieve(intent.payment_method).card.last4 == "1881"


@pytest.mark.parametrize(
    ("number", "card", "code", "param"),
    [
        ("4242424242424241", {}, "incorrect_number", "number"),
        ("4242424242424242", {"exp_month": 13}, "invalid_expiry_month", "exp_month"),
        ("4242424242424242", {"exp_year": 2001}, "invalid_expiry_year", "exp_year"),
        ("4242424242424242", {"cvc": "12"}, "invalid_cvc", "cvc"),
    ],
)
def test_invalid_card_data_is_a_card_error(
    sandbox: SandboxHandle, number: str, card: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(stripe.CardError) as raised:
        _create_token(sandbox, number, **card)

    assert raised.value.http_status == 402
    assert raised.value.code == code
    assert raised.value.param == param


def test_publishable_key_cannot_use_server_routes(sandbox: SandboxHandle) -> None:
    client = publishable_client(sandbox)

    with pytest.raises(stripe.AuthenticationError) as raised:
        client.v1.customers.create({})

    assert raised.value.http_status == 401


def test_retrieve_needs_the_client_secret(sandbox: SandboxHandle) -> None:
    intent = _setup_with(sandbox, _create_token(sandbox, "4000002500003155").id)
    client = publishable_client(sandbox)

    seen = client.v1.setup_intents.retrieve(intent.id, {"client_secret": intent.client_secret})
    with pytest.raises(stripe.InvalidRequestError) as wrong:
        client.v1.setup_intents.retrieve(intent.id, {"client_secret": "seti_x_secret_y"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.setup_intents.retrieve(intent.id)

    assert seen.status == "requires_action"
    assert seen.next_action.type == "use_stripe_sdk"
    assert "customer" not in seen  # the publishable view is a subset
    assert wrong.value.param == "client_secret"
    assert missing.value.param == "client_secret"


@pytest.mark.parametrize(
    ("outcome", "status"), [("complete", "succeeded"), ("fail", "requires_payment_method")]
)
def test_three_d_secure_through_the_client_route(
    sandbox: SandboxHandle, outcome: str, status: str
) -> None:
    intent = _setup_with(sandbox, _create_token(sandbox, "4000002500003155").id)
    client = publishable_client(sandbox)

    answer = client.raw_request(
        "post",
        "/v1/_sandbox/authenticate",
        intent=intent.id,
        client_secret=intent.client_secret,
        outcome=outcome,
    )

    shown = client.deserialize(answer, api_mode="V1")
    assert shown.status == status
    last = event_types(sandbox, intent.id)[-1]
    assert last == (
        "setup_intent.succeeded" if outcome == "complete" else "setup_intent.setup_failed"
    )
    if outcome == "fail":
        assert shown.last_setup_error.code == "setup_intent_authentication_failure"


def test_recovering_an_authentication_failure_on_the_same_payment_intent(
    sandbox: SandboxHandle,
) -> None:
    customer, method = sandbox.saved_card("recover@example.com", "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer, method)
    failed = raised.value.error.payment_intent
    client = publishable_client(sandbox)

    confirmed = client.v1.payment_intents.confirm(
        failed.id,
        {"client_secret": failed.client_secret, "payment_method": method, "return_url": RETURN_URL},  # type: ignore[typeddict-unknown-key]
    )
    assert confirmed.status == "requires_action"
    assert confirmed.next_action.use_stripe_sdk["type"] == "stripe_3ds2_fingerprint"
    client.raw_request(
        "post",
        "/v1/_sandbox/authenticate",
        intent=failed.id,
        client_secret=failed.client_secret,
        outcome="complete",
    )

    done = sandbox.client.v1.payment_intents.retrieve(failed.id)
    assert done.status == "succeeded"
    assert [a.status for a in sandbox.control.charges_for(payment_intent=failed.id)] == [
        "failed",
        "succeeded",
    ]
    assert event_types(sandbox, failed.id)[-2:] == [
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ]


def test_new_card_with_setup_future_usage_is_saved_on_success(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("funds@example.com", "pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer, method)
    failed = raised.value.error.payment_intent
    client = publishable_client(sandbox)
    token = client.deserialize(
        client.raw_request(
            "post",
            "/v1/confirmation_tokens",
            payment_method_data={
                "type": "card",
                "card": {
                    "number": "5555555555554444",
                    "exp_month": 1,
                    "exp_year": 2035,
                    "cvc": "321",
                },
            },
            setup_future_usage="off_session",
        ),
        api_mode="V1",
    )

    paid = client.v1.payment_intents.confirm(
        failed.id,
        {"client_secret": failed.client_secret, "confirmation_token": token.id},  # type: ignore[typeddict-unknown-key]
    )

    assert paid.status == "succeeded"
    saved = sandbox.client.v1.customers.payment_methods.list(customer).data
    assert {m.card.last4 for m in saved} == {"0341", "4444"}


def test_failed_authentication_on_a_payment_intent(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("nope@example.com", "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as raised:
        charge_off_session(sandbox, customer, method)
    failed = raised.value.error.payment_intent
    client = publishable_client(sandbox)
    client.v1.payment_intents.confirm(
        failed.id,
        {"client_secret": failed.client_secret, "payment_method": method},  # type: ignore[typeddict-unknown-key]
    )

    sandbox.control.authenticate(failed.id, False)

    seen = client.v1.payment_intents.retrieve(failed.id, {"client_secret": failed.client_secret})
    assert seen.status == "requires_payment_method"
    assert seen.last_payment_error.code == "payment_intent_authentication_failure"
    assert seen.last_payment_error.payment_method.id == method
    assert event_types(sandbox, failed.id)[-1] == "payment_intent.payment_failed"


def test_redirect_flavour_three_d_secure_page(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    intent = sandbox.client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "payment_method": "pm_card_authenticationRequired",
            "return_url": RETURN_URL,
        }
    )
    assert intent.next_action.type == "redirect_to_url"
    url = intent.next_action.redirect_to_url.url

    page = httpx.get(url)
    answer = httpx.post(url, data={"outcome": "complete"})

    assert page.status_code == 200 and "Complete" in page.text
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(RETURN_URL + "?setup_intent=" + intent.id)
    assert "redirect_status=succeeded" in answer.headers["location"]
    assert sandbox.client.v1.setup_intents.retrieve(intent.id).status == "succeeded"


def test_stripe_js_is_served(sandbox: SandboxHandle) -> None:
    script = httpx.get(f"{sandbox.url}/v3/stripe.js")
    missing = httpx.get(f"{sandbox.url}/v3/nothing.js")

    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert missing.status_code == 404


def test_sepa_token_from_the_browser(sandbox: SandboxHandle) -> None:
    client = publishable_client(sandbox)
    token = client.deserialize(
        client.raw_request(
            "post",
            "/v1/confirmation_tokens",
            payment_method_data={
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE89370400440532013000"},
                "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"},
            },
            mandate_data={
                "customer_acceptance": {
                    "type": "online",
                    "online": {"ip_address": "127.0.0.1", "user_agent": "test"},
                }
            },
        ),
        api_mode="V1",
    )

    assert token.payment_method_preview.type == "sepa_debit"
    assert token.payment_method_preview.sepa_debit.last4 == "3000"
    assert token.mandate_data.customer_acceptance.online.ip_address == "127.0.0.1"
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request(
            "post",
            "/v1/confirmation_tokens",
            payment_method_data={"type": "sepa_debit", "sepa_debit": {"iban": "DE00123"}},
        )
