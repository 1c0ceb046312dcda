"""The one place that talks to Stripe: a `StripeClient` built from settings.

Never set `stripe.api_key` or `stripe.api_base` globally; everything receives this client.
"""

from __future__ import annotations

import stripe

from processor.config import Settings


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
