"""GET /setup-intents/{id}: the saved method as this server recorded it, webhooks or not."""

from __future__ import annotations

import httpx

from tests.fixtures.app import LiveApp
from tests.integration.checkout.helpers import (
    attempts,
    confirm,
    confirmation_token,
    saved_methods,
    sign_up,
)


def test_the_saved_method_is_known_before_the_webhooks_arrive(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    customer = sign_up(browser_client)
    live.sandbox.pause_webhooks()
    setup = confirm(browser_client, confirmation_token(live, "pm_card_mastercard")).json()

    answer = browser_client.get(f"/setup-intents/{setup['setup_intent']}")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    method = body["payment_method"]
    assert (body["status"], method["type"], method["brand"], method["last4"]) == (
        "succeeded",
        "card",
        "mastercard",
        "4444",
    )
    [row] = saved_methods(live)
    assert (row.id, row.customer_id, row.setup_intent_id) == (
        method["id"],
        customer["id"],
        setup["setup_intent"],
    )
    assert (row.card_brand, row.card_last4, row.status) == ("mastercard", "4444", "active")

    live.sandbox.resume_webhooks()
    live.sandbox.wait_for_deliveries(timeout=10)
    assert browser_client.get(f"/setup-intents/{setup['setup_intent']}").json() == body
    [row] = saved_methods(live)
    assert row.card_last4 == "4444"
    [attempt] = attempts(live)
    assert (attempt.status, attempt.payment_method_id) == ("succeeded", method["id"])


def test_only_the_sessions_own_setups_are_visible(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    sign_up(browser_client)
    mine = confirm(browser_client, confirmation_token(live)).json()["setup_intent"]

    with httpx.Client(base_url=live.url, timeout=15) as other_browser:
        sign_up(other_browser, email="grace@example.com")
        assert other_browser.get(f"/setup-intents/{mine}").status_code == 404
        assert other_browser.get("/setup-intents/seti_unknown").status_code == 404
        assert other_browser.get("/setup-intents/not-an-id").status_code == 404
    assert httpx.get(f"{live.url}/setup-intents/{mine}").status_code == 401
    assert browser_client.get(f"/setup-intents/{mine}").status_code == 200
