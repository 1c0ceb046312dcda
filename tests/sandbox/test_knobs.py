"""Knobs: rate limit (429), injected 500s, latency, answers after webhooks; reset clears them."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle, WebhookReceiver


def test_rate_limit_answers_429(sandbox: SandboxHandle) -> None:
    sandbox.control.set_rate_limit(3)
    client = sandbox.new_client(max_network_retries=0)

    for _ in range(3):
        client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError) as raised:
        client.v1.customers.list()

    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"
    assert raised.value.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    time.sleep(1.05)
    client.v1.customers.list()


def test_injected_500_with_should_retry_is_retried(sandbox: SandboxHandle) -> None:
    sandbox.control.inject_errors(1.0, should_retry=True)
    client = sandbox.new_client(max_network_retries=0)

    with pytest.raises(stripe.APIError) as raised:
        client.v1.customers.create({})

    assert raised.value.http_status == 500
    assert raised.value.json_body["error"]["type"] == "api_error"
    assert raised.value.headers["Stripe-Should-Retry"] == "true"
    assert sandbox.control.events == []  # failed before anything ran


def test_injected_500_share_lets_retries_through(sandbox: SandboxHandle) -> None:
    sandbox.control.inject_errors(0.3, should_retry=True, seed=3)  # seeded: same run each time
    client = sandbox.new_client(max_network_retries=3)

    made = [client.v1.customers.create({"email": f"c{i}@example.com"}) for i in range(4)]

    sandbox.control.inject_errors(0.0)
    assert len({c.id for c in made}) == 4
    assert len(sandbox.client.v1.customers.list({"limit": 100}).data) == 4


def test_should_retry_false_stops_the_sdk(sandbox: SandboxHandle) -> None:
    sandbox.control.inject_errors(1.0, should_retry=False)
    client = sandbox.new_client(max_network_retries=2)
    started = time.monotonic()

    with pytest.raises(stripe.APIError) as raised:
        client.v1.customers.create({})

    assert raised.value.headers["Stripe-Should-Retry"] == "false"
    assert time.monotonic() - started < 0.5  # no back-off sleeps: one attempt only


def test_latency(sandbox: SandboxHandle) -> None:
    sandbox.control.set_latency(0.3)
    started = time.monotonic()

    sandbox.client.v1.customers.list()

    assert time.monotonic() - started >= 0.3


def test_an_answer_held_until_its_webhooks_are_delivered(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.register_webhook(webhook_receiver.url)
    sandbox.control.set_answer_after_webhooks(True)

    customer = sandbox.client.v1.customers.create({})

    delivered = [d for d in sandbox.control.deliveries if d.succeeded]
    assert [d.type for d in delivered] == ["customer.created"]
    assert customer.id in webhook_receiver.received[0].body.decode()


def test_reset_clears_state_and_knobs(sandbox: SandboxHandle) -> None:
    sandbox.saved_card("gone@example.com")
    sandbox.control.set_latency(1.0)
    sandbox.control.set_rate_limit(1)

    sandbox.control.reset()

    started = time.monotonic()
    assert sandbox.client.v1.customers.list().data == []
    assert sandbox.client.v1.customers.list().data == []
    assert time.monotonic() - started < 1.0
    assert sandbox.control.events == []
    assert sandbox.control.charge_attempts == []
