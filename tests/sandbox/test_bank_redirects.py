"""iDEAL and Bancontact set-ups: the bank page, then the generated SEPA Direct Debit method."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle
from tests.sandbox.flows import bank_setup, charge_off_session, event_types, publishable_client


def _press(sandbox: SandboxHandle, url: str, outcome: str) -> httpx.Response:
    page = httpx.get(url)
    assert page.status_code == 200
    return httpx.post(url, data={"outcome": outcome})


@pytest.mark.parametrize(("kind", "label"), [("ideal", "iDEAL"), ("bancontact", "Bancontact")])
def test_authorized_at_the_bank_saves_a_generated_sepa_debit(
    sandbox: SandboxHandle, kind: str, label: str
) -> None:
    customer, intent = bank_setup(sandbox, kind)
    assert intent.status == "requires_action"
    assert intent.next_action.type == "redirect_to_url"
    url = intent.next_action.redirect_to_url.url
    assert intent.next_action.redirect_to_url.return_url == RETURN_URL
    assert label in httpx.get(url).text

    back = _press(sandbox, url, "authorize")

    assert back.status_code == 303
    location = urlsplit(back.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    query = parse_qs(location.query)
    assert query["setup_intent"] == [intent.id]
    assert query["setup_intent_client_secret"] == [intent.client_secret]
    assert query["redirect_status"] == ["succeeded"]
    done = sandbox.client.v1.setup_intents.retrieve(intent.id, {"expand": ["latest_attempt"]})
    assert done.status == "succeeded"
    details = done.latest_attempt.payment_method_details[kind]
    generated = sandbox.client.v1.payment_methods.retrieve(details.generated_sepa_debit)
    assert generated.type == "sepa_debit"
    assert generated.customer == customer
    assert generated.sepa_debit.generated_from.setup_attempt == done.latest_attempt.id
    assert generated.sepa_debit.last4 == details.iban_last4 == "3000"
    assert done.mandate == details.generated_sepa_debit_mandate
    # Only the generated method is saved: the bank method is single use.
    listed = sandbox.client.v1.customers.payment_methods.list(customer)
    assert [m.id for m in listed.data] == [generated.id]
    assert event_types(sandbox, intent.id) == [
        "setup_intent.created",
        "setup_intent.requires_action",
        "setup_intent.succeeded",
    ]
    assert event_types(sandbox, generated.id) == ["payment_method.attached"]


def test_the_generated_method_is_charged_off_session_like_any_sepa_debit(
    sandbox: SandboxHandle,
) -> None:
    sandbox.control.set_sepa_settlement_delay(None)
    customer, intent = bank_setup(sandbox, "ideal")
    sandbox.control.authenticate(intent.id, True)
    [saved] = sandbox.client.v1.customers.payment_methods.list(customer).data

    charge = charge_off_session(sandbox, customer, saved.id, amount=1500, currency="eur")

    assert charge.status == "processing"
    sandbox.control.settle(charge.id)
    assert sandbox.client.v1.payment_intents.retrieve(charge.id).status == "succeeded"


def test_the_billing_email_decides_that_later_debits_fail(sandbox: SandboxHandle) -> None:
    sandbox.control.set_sepa_settlement_delay(None)
    email = "jo_generatedSepaDebitIntentsFail@example.com"
    customer, intent = bank_setup(sandbox, "bancontact", email)
    sandbox.control.authenticate(intent.id, True)
    [saved] = sandbox.client.v1.customers.payment_methods.list(customer).data

    charge = charge_off_session(sandbox, customer, saved.id, amount=1500, currency="eur")
    sandbox.control.settle(charge.id)

    failed = sandbox.client.v1.payment_intents.retrieve(charge.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_method_provider_decline"


def test_failed_at_the_bank_saves_nothing_and_the_page_closes(sandbox: SandboxHandle) -> None:
    customer, intent = bank_setup(sandbox, "bancontact")
    url = intent.next_action.redirect_to_url.url

    back = _press(sandbox, url, "fail")

    assert parse_qs(urlsplit(back.headers["location"]).query)["redirect_status"] == ["failed"]
    failed = sandbox.client.v1.setup_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error.code == "setup_intent_authentication_failure"
    assert sandbox.client.v1.customers.payment_methods.list(customer).data == []
    assert event_types(sandbox, intent.id)[-1] == "setup_intent.setup_failed"
    assert httpx.post(url, data={"outcome": "authorize"}).status_code == 400


def test_a_bank_set_up_needs_the_mandate_and_changes_nothing_without_it(
    sandbox: SandboxHandle,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        bank_setup(sandbox, "ideal", mandate=None)

    assert refused.value.param == "mandate_data"
    assert sandbox.client.v1.setup_intents.list().data == []


def test_an_unknown_ideal_bank_is_refused(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.test_helpers.confirmation_tokens.create(
            {"payment_method_data": {"type": "ideal", "ideal": {"bank": "nowhere"}}}
        )
    assert refused.value.param == "payment_method_data[ideal][bank]"


def test_stripe_js_tokens_carry_the_mandate_it_collected(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({"email": "js@example.com"})
    client = publishable_client(sandbox)
    token = client.deserialize(
        client.raw_request(
            "post",
            "/v1/confirmation_tokens",
            payment_method_data={
                "type": "ideal",
                "billing_details": {"name": "Jo", "email": "js@example.com"},
            },
            mandate_data={
                "customer_acceptance": {"type": "online", "online": {"ip_address": "127.0.0.1"}}
            },
            return_url=RETURN_URL,
        ),
        api_mode="V1",
    )
    intent = sandbox.client.v1.setup_intents.create(
        {"customer": customer.id, "confirm": True, "confirmation_token": token.id}
    )
    assert intent.status == "requires_action"
    assert intent.next_action.redirect_to_url.return_url == RETURN_URL
    assert token.payment_method_preview.type == "ideal"
    assert token.mandate_data.customer_acceptance.online.ip_address == "127.0.0.1"


def test_paying_with_ideal_is_refused_before_anything_changes(sandbox: SandboxHandle) -> None:
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method_data": {"type": "ideal", "billing_details": {"name": "Jo"}}}
    )
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.payment_intents.create(
            {
                "amount": 100,
                "currency": "eur",
                "confirm": True,
                "confirmation_token": token.id,
                "return_url": RETURN_URL,
            }
        )
    assert refused.value.param == "payment_method_data[type]"
    assert sandbox.client.v1.payment_intents.list().data == []
