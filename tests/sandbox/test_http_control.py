"""The `/_sandbox/…` JSON controls, for tests that run the sandbox in another process."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle, WebhookReceiver
from tests.sandbox.flows import charge_off_session, set_up


@pytest.fixture
def control(sandbox: SandboxHandle) -> httpx.Client:
    with httpx.Client(
        base_url=f"{sandbox.url}/_sandbox",
        headers={"Authorization": f"Bearer {sandbox.secret_key}"},
    ) as client:
        yield client


def test_control_needs_the_secret_key(sandbox: SandboxHandle) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/reset")

    assert answer.status_code == 401


def test_webhooks_over_http(
    sandbox: SandboxHandle, webhook_receiver: WebhookReceiver, control: httpx.Client
) -> None:
    endpoint = control.post(
        "/webhook_endpoints", json={"url": webhook_receiver.url, "secrets": ["whsec_a"]}
    ).json()["id"]
    sandbox.client.v1.customers.create({})

    assert control.post("/wait_for_deliveries", json={"timeout": 5}).json() == {"ok": True}
    [delivery] = control.get("/deliveries").json()["data"]
    assert delivery["status_code"] == 200 and delivery["endpoint_id"] == endpoint
    assert control.delete(f"/webhook_endpoints/{endpoint}").status_code == 200
    [event] = control.get("/events").json()["data"]
    assert event["type"] == "customer.created"


def test_authenticate_settle_and_charge_attempts_over_http(
    sandbox: SandboxHandle, control: httpx.Client
) -> None:
    intent = set_up(sandbox, "pm_card_authenticationRequiredOnSetup")

    done = control.post("/authenticate", json={"intent": intent.id, "outcome": "complete"})

    assert done.json()["status"] == "succeeded"
    control.post("/sepa_settlement_delay", json={"seconds": None})
    customer, method = sandbox.saved_card("sepa@example.com", "pm_sepaDebit_success_de")
    pending = charge_off_session(sandbox, customer, method, currency="eur")
    assert control.post("/settle", json={}).json() == {"settled": [pending.id]}
    [attempt] = control.get("/charge_attempts").json()["data"]
    assert attempt["payment_intent"] == pending.id and attempt["status"] == "succeeded"


def test_an_unknown_outcome_is_refused_not_taken_as_failure(
    sandbox: SandboxHandle, control: httpx.Client
) -> None:
    intent = set_up(sandbox, "pm_card_authenticationRequiredOnSetup")

    refused = control.post("/authenticate", json={"intent": intent.id, "outcome": "completed"})

    assert refused.status_code == 400
    assert sandbox.client.v1.setup_intents.retrieve(intent.id).status == "requires_action"
    failed = control.post("/authenticate", json={"intent": intent.id, "outcome": "fail"})
    assert failed.json()["status"] == "requires_payment_method"


def test_knobs_over_http(sandbox: SandboxHandle, control: httpx.Client) -> None:
    control.post("/errors", json={"share": 1.0, "should_retry": False})
    with pytest.raises(stripe.APIError):
        sandbox.client.v1.customers.list()

    control.post("/reset")

    assert sandbox.client.v1.customers.list().data == []
    control.post("/rate_limit", json={"requests_per_second": 1})
    sandbox.client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        sandbox.new_client(max_network_retries=0).v1.customers.list()
    assert control.post("/clock/advance", json={"seconds": 60}).status_code == 200
