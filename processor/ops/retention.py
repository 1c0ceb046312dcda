"""Retention: drop raw event payloads past their age while keeping the rows dashboards count.

Payloads of failed events are kept whatever their age: they are what `replay` needs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from processor.db.models import StripeEvent

PRUNABLE_STATUSES = ("processed", "ignored")


def prune_event_payloads(session: Session, *, older_than: timedelta, now: datetime) -> int:
    """Null the payload of settled events received before `now - older_than`; return how many."""
    result = session.execute(
        update(StripeEvent)
        .where(
            StripeEvent.received_at < now - older_than,
            StripeEvent.payload.is_not(None),
            StripeEvent.status.in_(PRUNABLE_STATUSES),
        )
        .values(payload=None, payload_pruned_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
