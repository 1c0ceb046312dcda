"""`processor reconcile`: pull the events we may have missed from Stripe's Events API.

Events of the types we handle are listed back to `since`; those not stored yet (or stored as
failed) go through the same store-and-dispatch path as webhook deliveries, oldest first, so
running it twice, or while webhooks still arrive, changes nothing twice. Stripe keeps events
for 30 days only: asking for more is clamped with a warning, and asking for nearly that
much warns that the oldest may already be gone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.method_details import Completion, complete_missing_details
from processor.db.models import StripeEvent
from processor.webhooks.apply import SETTLED_STATUSES, Delivery, Outcome
from processor.webhooks.envelope import event_from_mapping
from processor.webhooks.reducers import HANDLED_TYPES
from processor.webhooks.store import record_events

if TYPE_CHECKING:
    from processor.runtime import Runtime

RETENTION = timedelta(days=30)
NEAR_RETENTION_EDGE = timedelta(days=27)
PAGE_SIZE = 100


@dataclass
class ReconcileReport:
    listed: int = 0
    already_stored: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    methods: Completion = field(default_factory=Completion)


def retention_warnings(since: timedelta) -> tuple[timedelta, list[str]]:
    """The window to ask for, and what to tell the operator about Stripe's 30-day limit."""
    if since > RETENTION:
        return RETENTION, [
            f"Stripe keeps events for 30 days; looking back 30 days instead of {since.days}. "
            "Anything older can no longer be recovered from the Events API."
        ]
    if since >= NEAR_RETENTION_EDGE:
        return since, [
            "Close to Stripe's 30-day event retention: the oldest events may already be gone."
        ]
    return since, []


def reconcile(
    deps: Runtime, *, since: timedelta, on_event: Callable[[str, Outcome], None] | None = None
) -> ReconcileReport:
    sessions, client, clock = deps.sessions, deps.stripe, deps.clock
    window, warnings = retention_warnings(since)
    report = ReconcileReport(warnings=warnings)
    oldest = int((clock() - window).timestamp())
    missing: list[dict[str, Any]] = []
    for page in _pages(client, oldest):
        report.listed += len(page)
        settled = _settled_ids(sessions, [item["id"] for item in page])
        report.already_stored += len(settled)
        missing.extend(item for item in page if item["id"] not in settled)
    ordered = sorted(missing, key=lambda item: (item["created"], item["id"]))
    for start in range(0, len(ordered), PAGE_SIZE):
        deliveries = [
            Delivery(
                event_from_mapping(document, json.dumps(document, separators=(",", ":"))),
                source="reconcile",
            )
            for document in ordered[start : start + PAGE_SIZE]
        ]
        # A page at a time, through the receiver's own batch path.
        outcomes = record_events(deps.engine, deliveries, clock())
        for delivery, outcome in zip(deliveries, outcomes, strict=True):
            report.outcomes[outcome] += 1
            if on_event is not None:
                on_event(delivery.event.id, outcome)
    report.methods = complete_missing_details(sessions, client, clock=clock)
    return report


def _pages(client: stripe.StripeClient, oldest: int) -> Iterable[list[dict[str, Any]]]:
    params: dict[str, Any] = {
        "types": list(HANDLED_TYPES),
        "created": {"gte": oldest},
        "limit": PAGE_SIZE,
    }
    while True:
        page = client.v1.events.list(params)  # type: ignore[arg-type]
        items = [event.to_dict() for event in page.data]
        if items:
            yield items
        if not page.has_more or not items:
            return
        params["starting_after"] = items[-1]["id"]


def _settled_ids(sessions: sessionmaker[Session], ids: list[str]) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(StripeEvent.id).where(
                    StripeEvent.id.in_(ids), StripeEvent.status.in_(SETTLED_STATUSES)
                )
            )
        )
