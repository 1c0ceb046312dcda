"""Event handlers, one module per Stripe object family; `dispatch.HANDLERS` lists them all.

Every handler has the same shape, `(session, event, now) -> None`, runs inside the transaction
that records the event, never calls Stripe, and is safe to apply twice and in any order.
"""

from __future__ import annotations
