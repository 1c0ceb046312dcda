"""Stripe-shaped events for webhook tests: defaults merged with overrides, signed for real."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from stripe import WebhookSignature

API_VERSION = "2026-10-28.endive"
CREATED = 1_796_040_000  # 2026-11-30 12:00:00 UTC, the `clock` fixture's start


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def stripe_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int = CREATED,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        **extra,
    }


def card_method(method_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    method = {
        "id": method_id or new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": {"email": "jenny@example.com", "name": "Jenny Rosen"},
        "card": {
            "brand": "visa",
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "funding": "credit",
            "last4": "4242",
        },
        "created": CREATED - 60,
        "customer": "cus_test",
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
    method.update(overrides)
    return method


def sepa_method(method_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    method = card_method(method_id, type="sepa_debit", card=None)
    del method["card"]
    method["sepa_debit"] = {"bank_code": "37040044", "country": "DE", "last4": "3000"}
    method.update(overrides)
    return method


def setup_intent(
    intent_id: str | None = None, *, status: str = "succeeded", **overrides: Any
) -> dict[str, Any]:
    intent = {
        "id": intent_id or new_id("seti"),
        "object": "setup_intent",
        "client_secret": "seti_x_secret_y",
        "created": CREATED - 120,
        "customer": "cus_test",
        "last_setup_error": None,
        "livemode": False,
        "payment_method": None,
        "status": status,
        "usage": "off_session",
    }
    intent.update(overrides)
    return intent


def decline(code: str, decline_code: str | None = None, **overrides: Any) -> dict[str, Any]:
    messages = {
        "authentication_required": "Your card was declined. This transaction requires authentication.",
        "insufficient_funds": "Your card has insufficient funds.",
    }
    error = {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "message": messages.get(decline_code or code, "Your card was declined."),
        "charge": new_id("ch"),
        "payment_method": card_method("pm_failed"),
    }
    error.update(overrides)
    return error


def payment_intent(
    intent_id: str | None = None, *, status: str = "succeeded", **overrides: Any
) -> dict[str, Any]:
    intent = {
        "id": intent_id or new_id("pi"),
        "object": "payment_intent",
        "amount": 2000,
        "currency": "usd",
        "client_secret": "pi_x_secret_y",
        "created": CREATED - 30,
        "customer": "cus_test",
        "last_payment_error": None,
        "latest_charge": new_id("ch"),
        "livemode": False,
        "metadata": {},
        "payment_method": "pm_failed",
        "status": status,
    }
    intent.update(overrides)
    return intent


def body_of(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def signature(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A real `Stripe-Signature` header, made by stripe-python's own signer."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return WebhookSignature.generate_signature_header(payload, secret, timestamp=stamp)
