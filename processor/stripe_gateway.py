"""The one place that talks to Stripe: a `StripeClient` built from settings, and the readers
of what Stripe sends, whether webhook JSON (dicts) or stripe-python objects.

Never set `stripe.api_key` or `stripe.api_base` globally; everything receives this client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import stripe
from stripe import StripeObject

from processor.config import Settings
from processor.errors import InvalidInput, PaymentDeclined

_CONFIRMATION_TOKEN_ID = re.compile(r"^ctoken_[A-Za-z0-9_]{1,200}$")

# stripe-python's objects are not Mappings and have no `.get`, but both kinds index by name.
_FIELD_HOLDERS = (Mapping, StripeObject)


def build_stripe_client(settings: Settings) -> stripe.StripeClient:
    """A client for Stripe, or for the sandbox when `STRIPE_API_BASE` points at it."""
    return stripe.StripeClient(
        settings.stripe_secret_key,
        base_addresses={"api": stripe_api_base(settings)},
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
    )


def stripe_api_base(settings: Settings) -> str:
    """`STRIPE_API_BASE` if set; in sandbox mode the stand-in mounted in this app; else Stripe."""
    if settings.stripe_api_base:
        return settings.stripe_api_base.rstrip("/")
    if settings.sandbox:
        return f"{settings.public_base_url.rstrip('/')}/sandbox/stripe"
    return "https://api.stripe.com"


def value_of(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None where a step is missing: Stripe leaves fields out."""
    for name in path:
        if not isinstance(obj, _FIELD_HOLDERS):
            return None
        try:
            obj = obj[name]
        except KeyError:
            return None
    return obj


def ref_id(value: Any) -> str | None:
    """The id of a field Stripe sends either as an id or, when expanded, as an object."""
    if isinstance(value, str):
        return value
    inner = value_of(value, "id")
    return inner if isinstance(inner, str) else None


def required_id(obj: Mapping[str, Any] | StripeObject) -> str:
    """The object's own id; an event about an object without one cannot be applied."""
    value = value_of(obj, "id")
    if not isinstance(value, str) or not value:
        raise ValueError("data.object has no id")
    return value


def text_or_none(value: Any) -> str | None:
    """A text field, or None: webhook JSON is untrusted and may carry any type there."""
    return value if isinstance(value, str) else None


def require_confirmation_token_id(value: object) -> str:
    """A ConfirmationToken id from the browser, or `InvalidInput` before Stripe is asked."""
    if not isinstance(value, str) or not _CONFIRMATION_TOKEN_ID.match(value):
        raise InvalidInput(
            "confirmationTokenId must be a ConfirmationToken id (ctoken_…).",
            field="confirmationTokenId",
            code="invalid_confirmation_token",
        )
    return value


def declined(exc: stripe.CardError) -> PaymentDeclined:
    """Stripe's 402 as ours, with its customer-safe message and codes (raise it `from exc`)."""
    return PaymentDeclined(
        exc.user_message or "Your payment method was declined.",
        code=exc.code,
        decline_code=value_of(exc.error, "decline_code"),
    )
