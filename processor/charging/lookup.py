"""Finding the PaymentIntent of a reference without the idempotency key.

Stripe keeps an idempotency key for at least 24 hours, then may forget it: resending a charge
left pending for longer could charge again. Before that, the charger asks Stripe for the
customer's recent PaymentIntents and looks for the reference it put in their metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import stripe
from stripe.params import PaymentIntentListParams

from processor.stripe_gateway import value_of

# Keys are kept "at least 24 hours"; an hour's margin covers clock skew between us and Stripe.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
_PAGE_SIZE = 100
_MAX_PAGES = 20


def outlived_its_key(created_at: datetime, now: datetime) -> bool:
    """Whether Stripe may have forgotten the idempotency key of a row written at `created_at`."""
    return now - created_at >= IDEMPOTENCY_WINDOW


def find_intent_by_reference(
    client: stripe.StripeClient,
    *,
    customer_id: str,
    reference: str,
    since: datetime,
    call: Callable[[Callable[[], Any]], Any],
) -> Any | None:
    """The customer's PaymentIntent whose `metadata.reference` is `reference`, created after
    `since` (a day before our row, for clock skew), or None if there is none."""
    floor = int((since - timedelta(days=1)).timestamp())
    params: PaymentIntentListParams = {
        "customer": customer_id,
        "limit": _PAGE_SIZE,
        "created": {"gte": floor},
    }
    for _page in range(_MAX_PAGES):
        page = call(partial(client.v1.payment_intents.list, params.copy()))
        for intent in page.data:
            if value_of(intent, "metadata", "reference") == reference:
                return intent
        # Newest first: once a page reaches past the floor, older pages cannot hold it.
        if not page.has_more or not page.data or (value_of(page.data[-1], "created") or 0) < floor:
            return None
        params["starting_after"] = page.data[-1].id
    raise LookupError(
        f"more than {_PAGE_SIZE * _MAX_PAGES} recent PaymentIntents for {customer_id}; "
        f"look for metadata.reference={reference} in the Dashboard"
    )
