"""Idempotency keys: identical replay, mismatch, in-flight conflict, lost answers."""

from __future__ import annotations

import threading
import time

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.flows import charge_off_session


def test_replay_returns_the_same_body_and_status(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("replay@example.com")

    first = charge_off_session(sandbox, customer, method, options={"idempotency_key": "order-1"})
    second = charge_off_session(sandbox, customer, method, options={"idempotency_key": "order-1"})

    assert second.id == first.id
    assert second.last_response.body == first.last_response.body
    assert second.last_response.code == first.last_response.code == 200
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.control.charges_for(idempotency_key="order-1")) == 1


def test_a_declined_answer_is_replayed_too(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("declined@example.com", "pm_card_chargeCustomerFail")
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            charge_off_session(sandbox, customer, method, options={"idempotency_key": "k-402"})
        errors.append(raised.value)

    assert errors[0].http_body == errors[1].http_body
    assert len(sandbox.control.charges_for(idempotency_key="k-402")) == 1


def test_same_key_other_parameters_is_an_idempotency_error(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("mismatch@example.com")
    charge_off_session(sandbox, customer, method, options={"idempotency_key": "order-2"})

    with pytest.raises(stripe.IdempotencyError) as raised:
        charge_off_session(
            sandbox, customer, method, amount=2500, options={"idempotency_key": "order-2"}
        )

    assert raised.value.http_status == 400
    assert raised.value.json_body["error"]["type"] == "idempotency_error"
    assert "order-2" in str(raised.value)
    assert len(sandbox.control.charge_attempts) == 1


def test_same_key_while_the_first_request_runs_is_409(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("inflight@example.com")
    sandbox.control.set_latency(0.6)
    no_retries = sandbox.new_client(max_network_retries=0)
    results: list[object] = []

    def first() -> None:
        results.append(
            charge_off_session(
                sandbox,
                customer,
                method,
                client=no_retries,
                options={"idempotency_key": "order-3"},
            )
        )

    thread = threading.Thread(target=first)
    thread.start()
    try:
        time.sleep(0.2)  # the first request is now waiting inside the sandbox
        with pytest.raises(stripe.APIError) as raised:
            charge_off_session(
                sandbox,
                customer,
                method,
                client=no_retries,
                options={"idempotency_key": "order-3"},
            )
    finally:
        thread.join(timeout=10)

    assert raised.value.http_status == 409
    assert raised.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert len(results) == 1
    assert len(sandbox.control.charges_for(idempotency_key="order-3")) == 1


def test_lost_answer_retried_by_the_sdk_charges_once(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("lost@example.com")
    sandbox.control.inject_errors(1.0, should_retry=True, after_execution=True)
    one_retry = sandbox.new_client(max_network_retries=1)

    with pytest.raises(stripe.APIError):
        charge_off_session(
            sandbox, customer, method, client=one_retry, options={"idempotency_key": "order-4"}
        )
    sandbox.control.inject_errors(0.0)
    intent = charge_off_session(sandbox, customer, method, options={"idempotency_key": "order-4"})

    assert intent.status == "succeeded"
    assert intent.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.control.charges_for(idempotency_key="order-4")) == 1


def test_rejected_request_does_not_keep_the_key(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.payment_intents.create(
            {"amount": 10, "currency": "usd"}, {"idempotency_key": "order-5"}
        )

    intent = sandbox.client.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd"}, {"idempotency_key": "order-5"}
    )
    assert intent.amount == 1000


def test_keys_expire_after_24_hours(sandbox: SandboxHandle) -> None:
    first = sandbox.client.v1.customers.create({}, {"idempotency_key": "cust-1"})

    sandbox.control.advance_clock(24 * 3600 + 1)
    again = sandbox.client.v1.customers.create({}, {"idempotency_key": "cust-1"})

    assert again.id != first.id


def test_sdk_generated_keys_make_retries_safe(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("auto@example.com")
    sandbox.control.inject_errors(0.0)

    intent = charge_off_session(sandbox, customer, method)

    [attempt] = sandbox.control.charges_for(payment_intent=intent.id)
    assert attempt.idempotency_key  # stripe-python sends one on every POST


def test_a_replay_has_its_own_request_id_and_names_the_first(sandbox: SandboxHandle) -> None:
    first = sandbox.client.v1.customers.create({}, {"idempotency_key": "signup-1"})
    again = sandbox.client.v1.customers.create({}, {"idempotency_key": "signup-1"})

    original, replayed = first.last_response.headers, again.last_response.headers
    assert again.id == first.id
    assert replayed["Request-Id"] != original["Request-Id"]
    assert replayed["Request-Id"].startswith("req_")
    assert replayed["Original-Request"] == original["Request-Id"]
    assert replayed["Idempotency-Key"] == "signup-1"
    assert replayed["Idempotent-Replayed"] == "true"
    assert original["Idempotency-Key"] == "signup-1"
    assert "Idempotent-Replayed" not in original


def test_a_key_reused_on_another_endpoint_says_so(sandbox: SandboxHandle) -> None:
    sandbox.client.v1.customers.create({}, {"idempotency_key": "shared-key"})

    with pytest.raises(stripe.IdempotencyError) as raised:
        sandbox.client.v1.setup_intents.create({}, {"idempotency_key": "shared-key"})

    message = raised.value.json_body["error"]["message"]  # type: ignore[index]
    assert "same endpoint" in message
    assert "'POST /v1/customers' vs 'POST /v1/setup_intents'" in message
    assert "'shared-key'" in message
    assert sandbox.client.v1.setup_intents.list().data == []
