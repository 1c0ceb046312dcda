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
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
    )
