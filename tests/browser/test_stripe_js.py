"""The Stripe.js stand-in's intent calls, driven in Chromium on our own page (which loads it):
confirmPayment with a saved method and with Elements, redirects, and the retrieve calls.
These are what the recovery page relies on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from playwright.sync_api import Page, expect

from tests.fixtures.app import LiveApp

pytestmark = pytest.mark.browser


@pytest.fixture
def live(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    # These tests drive the stand-in with injected script, which our page's CSP rightly refuses.
    return new_page(bypass_csp=True)


def failed_off_session_payment(live: LiveApp, card: str) -> dict[str, Any]:
    """Save `card` for a new customer, then charge it off-session; answers the declined intent."""
    client = live.runtime.stripe
    customer = client.v1.customers.create({"email": "ada@example.com"})
    token = client.v1.test_helpers.confirmation_tokens.create({"payment_method": card})
    setup = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "confirm": True,
            "confirmation_token": token.id,
            "return_url": f"{live.url}/",
        }
    )
    if setup.status == "requires_action":
        live.sandbox.authenticate(setup.id, True)
    method = client.v1.setup_intents.retrieve(setup.id).payment_method
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(
            {
                "amount": 1500,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": method,
                "off_session": True,
                "confirm": True,
                "return_url": f"{live.url}/",
            }
        )
    intent = declined.value.error.payment_intent
    assert intent is not None
    return {"id": intent.id, "client_secret": intent.client_secret, "payment_method": method}


def open_host_page(page: Page, live: LiveApp) -> None:
    page.goto(f"{live.url}/")
    page.wait_for_function("typeof window.Stripe === 'function'")


def start(page: Page, script: str, argument: Any) -> None:
    """Run `script` (a promise-returning function body) without waiting; result in __result."""
    page.evaluate(
        "([script, argument]) => { window.__result = undefined;"
        " const run = new Function('stripe', 'argument', script);"
        " run(Stripe('pk_test_sandbox'), argument).then((r) => { window.__result = r; },"
        " (e) => { window.__result = { thrown: String(e) }; }); }",
        [script, argument],
    )


def result(page: Page) -> Any:
    page.wait_for_function("window.__result !== undefined")
    return page.evaluate("window.__result")


def test_confirm_payment_with_the_saved_method_runs_3d_secure(live: LiveApp, page: Page) -> None:
    intent = failed_off_session_payment(live, "pm_card_authenticationRequired")
    open_host_page(page, live)

    start(
        page,
        "return stripe.confirmPayment({clientSecret: argument.client_secret,"
        " confirmParams: {payment_method: argument.payment_method, return_url: location.href},"
        " redirect: 'if_required'});",
        intent,
    )
    page.get_by_role("dialog", name="3D Secure authentication").get_by_role(
        "button", name="Complete"
    ).click()

    answer = result(page)
    assert "error" not in answer, answer
    assert answer["paymentIntent"]["id"] == intent["id"]
    assert answer["paymentIntent"]["status"] == "succeeded"


def test_a_failed_challenge_comes_back_as_an_error_with_the_intent(
    live: LiveApp, page: Page
) -> None:
    intent = failed_off_session_payment(live, "pm_card_authenticationRequired")
    open_host_page(page, live)

    start(
        page,
        "return stripe.confirmPayment({clientSecret: argument.client_secret,"
        " confirmParams: {payment_method: argument.payment_method}, redirect: 'if_required'});",
        intent,
    )
    page.get_by_role("dialog", name="3D Secure authentication").get_by_role(
        "button", name="Fail"
    ).click()

    answer = result(page)
    assert answer["error"]["code"] == "payment_intent_authentication_failure"
    assert answer["error"]["payment_intent"]["status"] == "requires_payment_method"
    assert "paymentIntent" not in answer


def test_confirm_payment_with_a_new_method_from_elements(live: LiveApp, page: Page) -> None:
    intent = failed_off_session_payment(live, "pm_card_chargeCustomerFail")
    open_host_page(page, live)
    page.evaluate(
        """(clientSecret) => {
            const slot = document.createElement('div');
            slot.id = 'retry-element';
            document.body.prepend(slot);
            window.__stripe = Stripe('pk_test_sandbox');
            window.__elements = window.__stripe.elements({clientSecret});
            window.__elements.create('payment').mount('#retry-element');
        }""",
        intent["client_secret"],
    )
    page.locator("#retry-element").get_by_label(re.compile("^Visa 4242")).check()

    page.evaluate(
        """(clientSecret) => { window.__result = undefined;
            window.__elements.submit().then(() => window.__stripe.confirmPayment({
                elements: window.__elements, clientSecret,
                confirmParams: {return_url: location.href}, redirect: 'if_required'}))
            .then((r) => { window.__result = r; }); }""",
        intent["client_secret"],
    )

    answer = result(page)
    assert "error" not in answer, answer
    assert answer["paymentIntent"]["status"] == "succeeded"
    assert answer["paymentIntent"]["payment_method"] != intent["payment_method"]


def test_confirm_payment_redirects_to_the_return_url_by_default(live: LiveApp, page: Page) -> None:
    intent = failed_off_session_payment(live, "pm_card_authenticationRequired")
    open_host_page(page, live)

    start(
        page,
        "return stripe.confirmPayment({clientSecret: argument.client_secret,"
        " confirmParams: {payment_method: argument.payment_method,"
        " return_url: location.origin + '/?from=test'}});",
        intent,
    )
    page.get_by_role("dialog", name="3D Secure authentication").get_by_role(
        "button", name="Complete"
    ).click()

    page.wait_for_url(re.compile(r"redirect_status=succeeded"))
    assert f"payment_intent={intent['id']}" in page.url
    assert "from=test" in page.url


def test_retrieve_calls_use_the_client_secret(live: LiveApp, page: Page) -> None:
    intent = failed_off_session_payment(live, "pm_card_chargeCustomerFail")
    open_host_page(page, live)

    start(page, "return stripe.retrievePaymentIntent(argument);", intent["client_secret"])
    retrieved = result(page)
    assert retrieved["paymentIntent"]["id"] == intent["id"]
    assert retrieved["paymentIntent"]["status"] == "requires_payment_method"
    assert retrieved["paymentIntent"]["last_payment_error"]["code"] == "card_declined"

    wrong_secret = intent["client_secret"].split("_secret_")[0] + "_secret_wrong"
    start(page, "return stripe.retrievePaymentIntent(argument);", wrong_secret)
    assert result(page)["error"]["type"] == "invalid_request_error"

    start(page, "return stripe.retrieveSetupIntent(argument);", intent["client_secret"])
    assert result(page)["error"]["code"] == "invalid_client_secret"


def test_handle_next_action_refuses_an_intent_that_needs_nothing(live: LiveApp, page: Page) -> None:
    intent = failed_off_session_payment(live, "pm_card_chargeCustomerFail")
    open_host_page(page, live)

    start(
        page, "return stripe.handleNextAction({clientSecret: argument});", intent["client_secret"]
    )

    answer = result(page)
    assert answer["error"]["code"] == "payment_intent_unexpected_state"
    expect(page.get_by_role("dialog")).to_have_count(0)


def mount_bank_element(page: Page) -> Any:
    """A Payment Element in setup mode for euros (so it offers iDEAL and Bancontact)."""
    page.evaluate(
        """() => {
            const slot = document.createElement('div');
            slot.id = 'bank-element';
            document.body.prepend(slot);
            window.__stripe = Stripe('pk_test_sandbox');
            window.__elements = window.__stripe.elements({mode: 'setup', currency: 'eur'});
            window.__elements.create('payment').mount('#bank-element');
        }"""
    )
    return page.locator("#bank-element")


def test_ideal_from_elements_follows_the_bank_redirect_and_back(live: LiveApp, page: Page) -> None:
    open_host_page(page, live)
    element = mount_bank_element(page)
    element.get_by_label("iDEAL").check()
    element.get_by_label("Full name").fill("Jo Jansen")
    element.get_by_label("Email").fill("jo@example.com")
    element.get_by_label("Bank").select_option("ing")
    page.evaluate(
        """() => { window.__result = undefined;
            window.__elements.submit().then(() => window.__stripe.createConfirmationToken({
                elements: window.__elements, params: {return_url: location.origin + '/?from=bank'}}))
            .then((r) => { window.__result = r; }); }"""
    )
    token = result(page)["confirmationToken"]
    assert token["payment_method_preview"]["ideal"]["bank"] == "ing"
    client = live.runtime.stripe
    customer = client.v1.customers.create({"email": "jo@example.com"})
    setup = client.v1.setup_intents.create(
        {"customer": customer.id, "confirm": True, "confirmation_token": token["id"]}
    )
    assert setup.status == "requires_action"

    start(page, "return stripe.handleNextAction({clientSecret: argument});", setup.client_secret)
    page.get_by_role("button", name="Authorize test payment").click()

    page.wait_for_url(re.compile(r"redirect_status=succeeded"))
    assert f"setup_intent={setup.id}" in page.url
    assert "from=bank" in page.url
    [saved] = client.v1.customers.payment_methods.list(customer.id).data
    assert saved.type == "sepa_debit"


def test_confirm_setup_with_bancontact_goes_to_the_bank_and_back(live: LiveApp, page: Page) -> None:
    client = live.runtime.stripe
    customer = client.v1.customers.create({"email": "jo@example.com"})
    setup = client.v1.setup_intents.create({"customer": customer.id})
    open_host_page(page, live)
    element = mount_bank_element(page)
    element.get_by_label("Bancontact").check()
    element.get_by_label("Full name").fill("Jo Peeters")
    element.get_by_label("Email").fill("jo@example.com")

    page.evaluate(
        """(clientSecret) => { window.__elements.submit().then(() => window.__stripe.confirmSetup({
            elements: window.__elements, clientSecret,
            confirmParams: {return_url: location.origin + '/?from=confirm'}})); }""",
        setup.client_secret,
    )
    page.get_by_role("button", name="Fail test payment").click()

    page.wait_for_url(re.compile(r"redirect_status=failed"))
    assert f"setup_intent={setup.id}" in page.url
    failed = client.v1.setup_intents.retrieve(setup.id)
    assert failed.status == "requires_payment_method"
    assert client.v1.customers.payment_methods.list(customer.id).data == []
