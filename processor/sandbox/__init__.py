"""An offline stand-in for Stripe's test mode: API, webhooks, Stripe.js, test controls.

Imports nothing from the rest of `processor` but `processor.config`, so it can run on its
own like a third-party server (`processor sandbox`). See docs/sandbox.md.
"""

from __future__ import annotations

from processor.sandbox.app import create_sandbox_app
from processor.sandbox.control import ChargeAttempt, Sandbox
from processor.sandbox.webhooks import Delivery, signature_header

__all__ = ["ChargeAttempt", "Delivery", "Sandbox", "create_sandbox_app", "signature_header"]
