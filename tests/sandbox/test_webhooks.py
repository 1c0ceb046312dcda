"""Signed webhook delivery: signatures stripe-python accepts, retries, rotation, chaos."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle, WebhookReceiver
from tests.sandbox.flows import charge_off_session


def _verify(received: list, secret: str) -> list[stripe.Event]:
    return [stripe.Webhook.construct_event(r.body, r.signature, secret) for r in received]


def test_deliveries_verify_with_construct_event(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.register_webhook(webhook_receiver.url)
    customer, method = sandbox.saved_card("hooks@example.com")
    charge_off_session(sandbox, customer, method)

    sandbox.control.wait_for_deliveries()

    events = _verify(webhook_receiver.received, sandbox.webhook_secret)
    assert {e.type for e in events} == {e["type"] for e in sandbox.control.events}
    assert len(events) == len(sandbox.control.events)
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert isinstance(succeeded.data.object, stripe.PaymentIntent)
    assert succeeded.api_version == "2026-10-28.endive"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            webhook_receiver.received[0].body,
            webhook_receiver.received[0].signature,
            "whsec_other",
        )
    assert all(d.status_code == 200 for d in sandbox.control.deliveries)
    assert all(e.pending_webhooks == 0 for e in sandbox.client.v1.events.list({"limit": 100}).data)


def test_delivery_is_retried_until_a_2xx(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.answer(500, 302, 400)
    sandbox.register_webhook(webhook_receiver.url)

    customer = sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    attempts = [d for d in sandbox.control.deliveries if d.event_id]
    assert [d.status_code for d in attempts] == [500, 302, 400, 200]
    assert [d.attempt for d in attempts] == [1, 2, 3, 4]
    for event in _verify(webhook_receiver.received, sandbox.webhook_secret):
        assert event.data.object.id == customer.id
    [listed] = sandbox.client.v1.events.list({"delivery_success": True}).data
    assert listed.type == "customer.created"


def test_each_attempt_is_signed_afresh(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.answer(500)
    sandbox.control.set_webhook_retry_schedule([1.1])
    sandbox.register_webhook(webhook_receiver.url)

    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    first, second = (r.signature for r in webhook_receiver.received)
    assert int(second.split(",")[0][2:]) > int(first.split(",")[0][2:])
    assert len(_verify(webhook_receiver.received, sandbox.webhook_secret)) == 2


def test_retries_stop_after_the_schedule(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.default_status = 503
    sandbox.control.set_webhook_retry_schedule([0.05, 0.05])
    sandbox.register_webhook(webhook_receiver.url)

    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    assert [d.status_code for d in sandbox.control.deliveries] == [503, 503, 503]
    [pending] = sandbox.client.v1.events.list({"delivery_success": False}).data
    assert pending.pending_webhooks == 1


def test_timeouts_and_unreachable_endpoints_are_failures(sandbox: SandboxHandle) -> None:
    sandbox.control.set_webhook_retry_schedule([0.05])
    sandbox.register_webhook("http://127.0.0.1:9/unreachable")

    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    deliveries = sandbox.control.deliveries
    assert len(deliveries) == 2
    assert all(d.status_code is None and d.error for d in deliveries)


def test_rotation_signs_with_every_secret(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.register_webhook(webhook_receiver.url, ["whsec_old", "whsec_new"])

    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    [received] = webhook_receiver.received
    assert received.signature.count("v1=") == 2
    assert stripe.Webhook.construct_event(received.body, received.signature, "whsec_old")
    assert stripe.Webhook.construct_event(received.body, received.signature, "whsec_new")


def test_pause_holds_deliveries_until_resume(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.register_webhook(webhook_receiver.url)
    sandbox.control.pause_webhooks()

    sandbox.client.v1.customers.create({})
    with pytest.raises(TimeoutError):
        sandbox.control.wait_for_deliveries(timeout=0.3)
    assert webhook_receiver.received == []

    sandbox.control.resume_webhooks()
    sandbox.control.wait_for_deliveries()
    assert len(webhook_receiver.received) == 1


def test_duplicates_and_shuffle(sandbox: SandboxHandle, webhook_receiver: WebhookReceiver) -> None:
    sandbox.register_webhook(webhook_receiver.url)
    sandbox.control.set_webhook_chaos(duplicate_share=1.0, shuffle=True)

    for _ in range(5):
        sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    ids = [json.loads(r.body)["id"] for r in webhook_receiver.received]
    assert len(ids) == 10
    assert len(set(ids)) == 5


def test_removed_endpoint_gets_nothing_more(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    endpoint = sandbox.register_webhook(webhook_receiver.url)
    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    sandbox.control.remove_webhook_endpoint(endpoint)
    sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    assert len(webhook_receiver.received) == 1


def test_delivery_happens_after_the_request(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver
) -> None:
    sandbox.register_webhook(webhook_receiver.url)
    webhook_receiver.answer(200)

    started = time.monotonic()
    customer = sandbox.client.v1.customers.create({})
    sandbox.control.wait_for_deliveries()

    event = json.loads(webhook_receiver.received[0].body)
    assert event["data"]["object"]["id"] == customer.id
    assert event["request"]["id"] == customer.last_response.request_id
    assert time.monotonic() - started < 5
