"""Every object the sandbox serves, in answers and in webhook bodies, against Stripe's schemas.

The schemas (tests/conformance/stripe_schemas.json) are generated from stripe-node's types at
the API version stripe-python pins, by tests/conformance/generate_schemas.mjs. A missing
field, a field Stripe does not declare, or a value of the wrong type fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle, WebhookReceiver

SCHEMAS_FILE = Path(__file__).resolve().parents[1] / "conformance" / "stripe_schemas.json"
NO_REDIRECTS = {"enabled": True, "allow_redirects": "never"}


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    data = json.loads(SCHEMAS_FILE.read_text())
    assert data["api_version"] == stripe.api_version
    return {name: Draft202012Validator(schema) for name, schema in data["schemas"].items()}


def _problems(validators: dict[str, Draft202012Validator], obj: dict[str, Any]) -> list[str]:
    """Schema errors of `obj` and of the Stripe objects embedded in it."""
    found = []
    for path, item in _stripe_objects(obj, ""):
        kind = f"deleted_{item['object']}" if item.get("deleted") is True else item["object"]
        validator = validators.get(kind)
        if validator is None:
            continue
        for found_error in validator.iter_errors(item):
            # Inside `anyOf` (nullable fields), the closest branch says what is wrong.
            error = best_match(found_error.context) if found_error.context else found_error
            assert error is not None
            where = "/".join(str(p) for p in error.absolute_path)
            found.append(f"{item['object']}{path} at {where or '(top)'}: {error.message[:200]}")
    return found


def _stripe_objects(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if isinstance(node.get("object"), str):
            yield path, node
        for key, value in node.items():
            yield from _stripe_objects(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _stripe_objects(value, f"{path}[{index}]")


def _run_the_flows(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    """Everything the product and Stripe's CLI do; answers the API's bodies along the way."""
    client = sandbox.client.v1
    answers: list[dict[str, Any]] = []

    def keep(obj: Any) -> Any:
        answers.append(json.loads(obj.last_response.body))  # the body as served
        return obj

    customer = keep(client.customers.create({"email": "conform@example.com", "name": "Jo"}))
    keep(client.customers.update(customer.id, {"metadata": {"plan": "gold"}}))
    token = keep(client.test_helpers.confirmation_tokens.create({"payment_method": "pm_card_visa"}))
    setup = keep(
        client.setup_intents.create(
            {
                "customer": customer.id,
                "confirm": True,
                "confirmation_token": token.id,
                "return_url": RETURN_URL,
            }
        )
    )
    keep(client.confirmation_tokens.retrieve(token.id))
    keep(client.setup_intents.retrieve(setup.id, {"expand": ["latest_attempt"]}))
    three_ds = keep(
        client.setup_intents.create(
            {
                "customer": customer.id,
                "confirm": True,
                "payment_method": "pm_card_authenticationRequired",
                "return_url": RETURN_URL,
            }
        )
    )
    sandbox.control.authenticate(three_ds.id, False)
    with pytest.raises(stripe.CardError) as declined_setup:
        client.setup_intents.create(
            {
                "customer": customer.id,
                "confirm": True,
                "payment_method": "pm_card_chargeDeclined",
                "return_url": RETURN_URL,
            }
        )
    paid = keep(
        client.payment_intents.create(
            {
                "amount": 1500,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": str(setup.payment_method),
                "off_session": True,
                "confirm": True,
            }
        )
    )
    keep(client.payment_intents.retrieve(paid.id, {"expand": ["latest_charge.balance_transaction"]}))
    keep(client.refunds.create({"payment_intent": paid.id, "amount": 500}))
    with pytest.raises(stripe.CardError) as declined_payment:
        client.payment_intents.create(
            {
                "amount": 1500,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
                "automatic_payment_methods": NO_REDIRECTS,
            }
        )
    held = keep(
        client.payment_intents.create(
            {
                "amount": 2500,
                "currency": "usd",
                "payment_method": "pm_card_createDispute",
                "confirm": True,
                "capture_method": "manual",
                "automatic_payment_methods": NO_REDIRECTS,
            }
        )
    )
    keep(client.payment_intents.capture(held.id))
    sepa = keep(
        client.payment_methods.create(
            {
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE89370400440532013000"},
                "billing_details": {"name": "Jo", "email": "conform@example.com"},
            }
        )
    )
    debit = keep(
        client.payment_intents.create(
            {
                "amount": 1000,
                "currency": "eur",
                "payment_method": sepa.id,
                "confirm": True,
                "automatic_payment_methods": NO_REDIRECTS,
                "mandate_data": {"customer_acceptance": {"type": "offline", "accepted_at": 1}},
            }
        )
    )
    sandbox.control.settle(debit.id)
    ideal_token = keep(
        client.test_helpers.confirmation_tokens.create(
            {
                "payment_method_data": {
                    "type": "ideal",
                    "ideal": {"bank": "ing"},
                    "billing_details": {"name": "Jo", "email": "conform@example.com"},
                }
            }
        )
    )
    ideal = keep(
        client.setup_intents.create(
            {
                "customer": customer.id,
                "confirm": True,
                "confirmation_token": ideal_token.id,
                "return_url": RETURN_URL,
                "mandate_data": {"customer_acceptance": {"type": "offline", "accepted_at": 1}},
            }
        )
    )
    sandbox.control.authenticate(ideal.id, True)
    ideal_done = keep(client.setup_intents.retrieve(ideal.id, {"expand": ["latest_attempt"]}))
    generated = ideal_done.latest_attempt.payment_method_details.ideal.generated_sepa_debit
    keep(client.payment_methods.retrieve(generated))
    # Error bodies embed the intent and the method: those are checked too.
    answers += [declined_setup.value.json_body or {}, declined_payment.value.json_body or {}]
    keep(client.payment_methods.detach(str(setup.payment_method)))
    keep(client.customers.delete(customer.id))
    return answers


def test_answers_and_webhooks_match_stripes_schemas(
    sandbox: SandboxHandle,
    webhook_receiver: WebhookReceiver,
    validators: dict[str, Draft202012Validator],
) -> None:
    sandbox.register_webhook(webhook_receiver.url)

    answers = _run_the_flows(sandbox)
    sandbox.control.wait_for_deliveries()
    listed = httpx.get(
        f"{sandbox.url}/v1/events",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {sandbox.secret_key}"},
    ).json()["data"]
    bodies = [json.loads(delivery.body) for delivery in webhook_receiver.received]

    problems = [p for body in [*answers, *listed, *bodies] for p in _problems(validators, body)]
    kinds = {item["object"] for body in listed for _, item in _stripe_objects(body, "")}
    answered = {item["object"] for body in answers for _, item in _stripe_objects(body, "")}
    assert not problems, "\n".join(sorted(set(problems))[:200])
    assert {"charge", "customer", "dispute", "event", "payment_intent"} <= kinds
    assert {"payment_method", "refund", "setup_intent"} <= kinds
    assert {"balance_transaction", "confirmation_token", "setup_attempt"} <= answered
    assert len(bodies) == len(listed)
