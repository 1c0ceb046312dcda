"""Event handlers, one module per Stripe object family; `dispatch.HANDLERS` lists them all.

Every handler has the same shape, `(session, event, now) -> None`, runs inside the transaction
that records the event, never calls Stripe, and is safe to apply twice and in any order.
"""

from __future__ import annotations

# setup_records and webhooks.method_details still import `ref_id` from here.
from processor.stripe_fields import ref_id as ref_id
