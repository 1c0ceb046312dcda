"""Sending the customer back to the merchant's `return_url` after a page outside Stripe.js
(3-D Secure, the bank), with the query parameters Stripe adds."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse

from processor.sandbox.store import StripeObject


def back_to_merchant(intent: StripeObject, return_url: str) -> RedirectResponse:
    """303 to `return_url` + `{setup_intent|payment_intent}`, its client secret, and
    `redirect_status` (`processing` counts as succeeded: the customer's part is done)."""
    kind = intent["object"]
    query = urlencode(
        {
            kind: intent["id"],
            f"{kind}_client_secret": intent["client_secret"],
            "redirect_status": "succeeded"
            if intent["status"] in ("succeeded", "processing")
            else "failed",
        }
    )
    separator = "&" if "?" in return_url else "?"
    return RedirectResponse(f"{return_url}{separator}{query}", 303)
