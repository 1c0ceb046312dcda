"""Small steps the conformance tests share, each one a stripe-python call or two."""

from __future__ import annotations

from typing import Any

import stripe

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle


def set_up(sandbox: SandboxHandle, payment_method: str, email: str = "jo@example.com") -> Any:
    """Customer + confirmation token + SetupIntent(create, confirm). Answers the SetupIntent."""
    return sandbox.set_up(payment_method, email)


def charge_off_session(
    sandbox: SandboxHandle,
    customer: str,
    payment_method: str,
    *,
    amount: int = 1999,
    currency: str = "usd",
    options: dict[str, Any] | None = None,
    client: stripe.StripeClient | None = None,
) -> Any:
    return (client or sandbox.client).v1.payment_intents.create(
        {
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
        },
        options or {},
    )


def publishable_client(sandbox: SandboxHandle) -> stripe.StripeClient:
    """stripe-python speaking with the publishable key, as Stripe.js does."""
    return stripe.StripeClient(sandbox.publishable_key, base_addresses={"api": sandbox.url})


def event_types(sandbox: SandboxHandle, object_id: str) -> list[str]:
    return [e["type"] for e in sandbox.control.events if e["data"]["object"]["id"] == object_id]


BANK_MANDATE = {"customer_acceptance": {"type": "offline", "accepted_at": 1}}


def bank_setup(
    sandbox: SandboxHandle,
    kind: str,
    email: str = "jo@example.com",
    *,
    mandate: dict[str, Any] | None = BANK_MANDATE,
) -> tuple[str, Any]:
    """A customer and a SetupIntent confirmed with an iDEAL/Bancontact token (at the bank)."""
    client = sandbox.client.v1
    customer = client.customers.create({"email": email})
    data: dict[str, Any] = {"type": kind, "billing_details": {"name": "Jo Jansen", "email": email}}
    if kind == "ideal":
        data["ideal"] = {"bank": "ing"}
    token = client.test_helpers.confirmation_tokens.create({"payment_method_data": data})
    params: dict[str, Any] = {
        "customer": customer.id,
        "confirm": True,
        "confirmation_token": token.id,
        "return_url": RETURN_URL,
    }
    if mandate is not None:
        params["mandate_data"] = mandate
    return customer.id, client.setup_intents.create(params)
