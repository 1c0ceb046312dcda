"""POST /create-confirm-intent against the sandbox: every outcome of saving a method, and what
`setup_attempts` records for it before the answer goes out."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.app import LiveApp
from tests.integration.checkout.helpers import (
    attempts,
    authenticate,
    confirm,
    confirmation_token,
    sign_up,
)


def test_a_card_is_saved_in_one_request(live: LiveApp, browser_client: httpx.Client) -> None:
    customer = sign_up(browser_client)
    token = confirmation_token(live, "pm_card_visa")

    answer = confirm(browser_client, token)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded"
    assert body["client_secret"].startswith(f"{body['setup_intent']}_secret_")
    intent = live.runtime.stripe.v1.setup_intents.retrieve(body["setup_intent"])
    assert intent.customer == customer["id"]
    assert intent.status == "succeeded"
    assert intent.automatic_payment_methods is not None
    assert intent.automatic_payment_methods.enabled is True
    [row] = attempts(live)
    assert (row.setup_intent_id, row.customer_id, row.confirmation_token_id) == (
        intent.id,
        customer["id"],
        token,
    )
    assert row.status == "succeeded"
    assert row.payment_method_id == intent.payment_method
    assert row.error_code is None


def test_three_d_secure_required_then_completed(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    sign_up(browser_client)
    answer = confirm(
        browser_client, confirmation_token(live, "pm_card_authenticationRequiredOnSetup")
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "requires_action"
    [row] = attempts(live)
    assert row.status == "requires_action"

    assert authenticate(live, body["client_secret"], "complete")["status"] == "succeeded"
    live.sandbox.wait_for_deliveries(timeout=10)  # the row follows the intent's webhooks

    outcome = browser_client.get(f"/setup-intents/{body['setup_intent']}")
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["status"] == "succeeded"
    assert outcome.json()["payment_method"]["last4"] == "3155"
    [row] = attempts(live)
    assert row.status == "succeeded"


def test_three_d_secure_failed(live: LiveApp, browser_client: httpx.Client) -> None:
    sign_up(browser_client)
    body = confirm(
        browser_client, confirmation_token(live, "pm_card_authenticationRequiredOnSetup")
    ).json()

    failed = authenticate(live, body["client_secret"], "fail")
    live.sandbox.wait_for_deliveries(timeout=10)  # the row follows the intent's webhooks

    assert failed["status"] == "requires_payment_method"
    outcome = browser_client.get(f"/setup-intents/{body['setup_intent']}").json()
    assert outcome["status"] == "requires_payment_method"
    assert outcome["payment_method"] is None
    assert outcome["error"]["code"] == "setup_intent_authentication_failure"
    [row] = attempts(live)
    assert row.status == "requires_payment_method"
    assert row.error_code == "setup_intent_authentication_failure"


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code", "message", "shown"),
    [
        (
            "pm_card_chargeDeclined",
            "card_declined",
            "generic_decline",
            "Your card was declined.",
            {"code": "card_declined", "message": "Your card was declined."},
        ),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
            {"code": "insufficient_funds", "message": "Your card has insufficient funds."},
        ),
        (
            "pm_card_visa_chargeDeclinedLostCard",
            "card_declined",
            "lost_card",
            "Your card was declined.",
            {"code": "card_declined", "message": "Your card was declined."},
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            "expired_card",
            None,
            "Your card has expired.",
            {"code": "card_declined", "message": "Your card was declined."},
        ),
    ],
)
def test_a_card_declined_at_setup_is_answered_generically_and_kept_whole_for_ops(
    live: LiveApp,
    browser_client: httpx.Client,
    payment_method: str,
    code: str,
    decline_code: str | None,
    message: str,
    shown: dict[str, str],
) -> None:
    customer = sign_up(browser_client)

    answer = confirm(browser_client, confirmation_token(live, payment_method))

    assert answer.status_code == 402
    assert answer.json() == {"error": shown}
    [row] = attempts(live)
    assert row.setup_intent_id is not None and row.setup_intent_id.startswith("seti_")
    assert (row.customer_id, row.status) == (customer["id"], "requires_payment_method")
    assert (row.error_code, row.decline_code, row.error_message) == (code, decline_code, message)


def test_resending_a_token_replays_the_first_answer(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    sign_up(browser_client)
    token = confirmation_token(live)

    first = confirm(browser_client, token)
    again = confirm(browser_client, token)

    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    created = [e for e in live.sandbox.events if e["type"] == "setup_intent.created"]
    assert len(created) == 1
    assert len(attempts(live)) == 1


def test_a_token_used_by_someone_else_is_refused(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    sign_up(browser_client)
    token = confirmation_token(live)
    assert confirm(browser_client, token).status_code == 200

    with httpx.Client(base_url=live.url, timeout=15) as other_browser:
        other = sign_up(other_browser, email="grace@example.com")
        answer = confirm(other_browser, token)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "confirmation_token_unusable"
    assert answer.json()["error"]["field"] == "confirmationTokenId"
    refused = [a for a in attempts(live) if a.customer_id == other["id"]]
    assert [(a.setup_intent_id, a.status, a.error_code) for a in refused] == [
        (None, "rejected", "confirmation_token_already_used")
    ]


def test_an_expired_token_is_refused(live: LiveApp, browser_client: httpx.Client) -> None:
    sign_up(browser_client)
    token = confirmation_token(live)
    live.sandbox.advance_clock(12 * 3600 + 1)

    answer = confirm(browser_client, token)

    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "code": "confirmation_token_unusable",
        "message": "These payment details have expired or were already used. "
        "Please enter them again.",
        "field": "confirmationTokenId",
    }
    [row] = attempts(live)
    assert (row.status, row.error_code) == ("rejected", "confirmation_token_expired")


def test_stripe_answering_500_is_a_502(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0)
    with httpx.Client(base_url=live.url, timeout=15) as client:
        sign_up(client)
        token = confirmation_token(live)
        live.sandbox.inject_errors(1.0)
        answer = confirm(client, token)

    assert answer.status_code == 502
    assert answer.json() == {
        "error": {
            "code": "stripe_unavailable",
            "message": "We could not reach our payment provider. Please try again in a moment.",
        }
    }
    [row] = attempts(live)
    assert (row.setup_intent_id, row.status) == (None, "error")
    assert row.confirmation_token_id == token


def test_stripe_timing_out_is_a_502(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0, stripe_timeout_seconds=0.5)
    with httpx.Client(base_url=live.url, timeout=15) as client:
        sign_up(client)
        token = confirmation_token(live)
        live.sandbox.set_latency(2.0)
        started = time.monotonic()
        answer = confirm(client, token)
        elapsed = time.monotonic() - started

    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "stripe_unavailable"
    assert elapsed < 1.9, "the short client timeout, not the sandbox's delay, ended the call"
    [row] = attempts(live)
    assert (row.status, row.error_code) == ("error", "APIConnectionError")


# -- answers lost after Stripe created the SetupIntent ----------------------------------------


def _confirm_losing_the_answer(live: LiveApp, client: httpx.Client, token: str) -> None:
    """Stripe runs the create, then its answer is a 500 (as if the response were lost)."""
    live.sandbox.inject_errors(1.0, after_execution=True)
    assert confirm(client, token).status_code == 502
    live.sandbox.inject_errors(0.0)


def test_a_lost_answer_then_the_webhook_leaves_one_succeeded_row(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0)
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        customer = sign_up(client)
        token = confirmation_token(live)
        live.sandbox.pause_webhooks()
        _confirm_losing_the_answer(live, client, token)
        [orphan] = attempts(live)
        assert (orphan.setup_intent_id, orphan.status) == (None, "error")

        live.sandbox.resume_webhooks()
        live.sandbox.wait_for_deliveries(timeout=10)

    [row] = attempts(live)
    assert row.id == orphan.id
    assert row.setup_intent_id is not None and row.setup_intent_id.startswith("seti_")
    assert (row.customer_id, row.confirmation_token_id, row.status) == (
        customer["id"], token, "succeeded",
    )
    assert (row.error_code, row.error_message) == (None, None)
    assert row.payment_method_id is not None


def test_the_webhook_then_a_lost_answer_writes_no_error_row(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0)
    live.sandbox.set_answer_after_webhooks(True)
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        customer = sign_up(client)
        token = confirmation_token(live)
        _confirm_losing_the_answer(live, client, token)
        delivered = {d.type for d in live.sandbox.deliveries if d.succeeded}
        assert "setup_intent.succeeded" in delivered, "the event came before the lost answer"

    [row] = attempts(live)
    assert row.setup_intent_id is not None
    assert (row.customer_id, row.confirmation_token_id, row.status) == (
        customer["id"], token, "succeeded",
    )


def test_a_retry_after_a_lost_answer_leaves_one_row(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0)
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        customer = sign_up(client)
        token = confirmation_token(live)
        live.sandbox.pause_webhooks()
        _confirm_losing_the_answer(live, client, token)

        again = confirm(client, token)
        assert again.status_code == 200, again.text
        [row] = attempts(live)
        assert (row.setup_intent_id, row.status, row.error_code) == (
            again.json()["setup_intent"], "succeeded", None,
        )

        live.sandbox.resume_webhooks()
        live.sandbox.wait_for_deliveries(timeout=10)

    created = [e for e in live.sandbox.events if e["type"] == "setup_intent.created"]
    assert len(created) == 1
    [row] = attempts(live)
    assert (row.setup_intent_id, row.customer_id, row.confirmation_token_id, row.status) == (
        again.json()["setup_intent"], customer["id"], token, "succeeded",
    )
