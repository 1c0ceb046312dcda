"""iDEAL and Bancontact through the save-a-method routes: the bank method is never saved; the
sepa_debit method it generated is, from its webhook alone, and says where it came from."""

from __future__ import annotations

from typing import Any

import httpx
import stripe

from tests.fixtures.app import LiveApp
from tests.integration.checkout.helpers import attempts, confirm, saved_methods, sign_up


def bank_token(live: LiveApp, kind: str, email: str = "ada@example.com") -> str:
    """A ConfirmationToken as the Payment Element makes it: with the mandate it showed."""
    client = stripe.StripeClient(
        live.settings.stripe_publishable_key, base_addresses={"api": f"{live.url}/sandbox/stripe"}
    )
    data: dict[str, Any] = {"type": kind, "billing_details": {"name": "Ada", "email": email}}
    if kind == "ideal":
        data["ideal"] = {"bank": "rabobank"}
    token = client.deserialize(
        client.raw_request(
            "post",
            "/v1/confirmation_tokens",
            payment_method_data=data,
            mandate_data={
                "customer_acceptance": {"type": "online", "online": {"ip_address": "::1"}}
            },
            return_url=f"{live.url}/",
        ),
        api_mode="V1",
    )
    return str(token.id)


def test_ideal_saves_the_generated_sepa_debit_from_its_webhook(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    customer = sign_up(browser_client)
    started = confirm(browser_client, bank_token(live, "ideal"))
    assert started.status_code == 200, started.text
    setup = started.json()
    assert setup["status"] == "requires_action"
    live.sandbox.pause_webhooks()

    live.sandbox.authenticate(setup["setup_intent"], True)
    answer = browser_client.get(f"/setup-intents/{setup['setup_intent']}").json()

    shown = answer["payment_method"]
    assert (answer["status"], shown["type"], shown["last4"], shown["generated_from"]) == (
        "succeeded",
        "sepa_debit",
        "3000",
        "ideal",
    )
    assert saved_methods(live) == [], "the page's question records nothing; the webhook does"
    live.sandbox.resume_webhooks()
    live.sandbox.wait_for_deliveries(timeout=10)
    [row] = saved_methods(live)
    assert (row.id, row.type, row.sepa_last4, row.status) == (
        shown["id"],
        "sepa_debit",
        "3000",
        "active",
    )
    assert (row.customer_id, row.setup_intent_id, row.generated_from) == (
        customer["id"],
        setup["setup_intent"],
        "ideal",
    )
    [attempt] = attempts(live)
    assert (attempt.status, attempt.payment_method_type) == ("succeeded", "ideal")
    assert attempt.payment_method_id != row.id  # the single-use iDEAL method
    live.sandbox.set_latency(5.0)  # from here on, asking Stripe would show
    again = browser_client.get(f"/setup-intents/{setup['setup_intent']}", timeout=3).json()
    live.sandbox.set_latency(0.0)
    assert again["payment_method"] == shown, "answered from the rows the webhooks wrote"


def test_bancontact_failed_at_the_bank_saves_nothing(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    sign_up(browser_client)
    setup = confirm(browser_client, bank_token(live, "bancontact")).json()

    live.sandbox.authenticate(setup["setup_intent"], False)
    live.sandbox.wait_for_deliveries(timeout=10)

    answer = browser_client.get(f"/setup-intents/{setup['setup_intent']}").json()
    assert (answer["status"], answer["payment_method"]) == ("requires_payment_method", None)
    assert answer["error"]["code"] == "setup_intent_authentication_failure"
    assert saved_methods(live) == []
    [attempt] = attempts(live)
    assert (attempt.status, attempt.payment_method_type) == (
        "requires_payment_method",
        "bancontact",
    )
