"""`prune` drops old settled payloads and keeps the rows and failed payloads."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from processor.db.engine import unit_of_work
from processor.db.models import StripeEvent
from processor.ops.retention import prune_event_payloads


def _event(event_id: str, status: str, received_at) -> StripeEvent:  # type: ignore[no-untyped-def]
    return StripeEvent(
        id=event_id, type="payment_intent.succeeded", stripe_created_at=received_at,
        received_at=received_at, last_received_at=received_at, status=status,
        delivery_count=1, attempt_count=1, source="webhook", payload="{}",
    )


def test_prune_keeps_rows_recent_payloads_and_failed_payloads(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        session.add_all([
            _event("evt_old", "processed", now - timedelta(days=100)),
            _event("evt_old_failed", "failed", now - timedelta(days=100)),
            _event("evt_new", "processed", now - timedelta(days=1)),
        ])
    with unit_of_work(sessions) as session:
        assert prune_event_payloads(session, older_than=timedelta(days=90), now=now) == 1
    with unit_of_work(sessions) as session:
        rows = {e.id: e for e in session.scalars(select(StripeEvent))}
    assert set(rows) == {"evt_old", "evt_old_failed", "evt_new"}
    assert rows["evt_old"].payload is None and rows["evt_old"].payload_pruned_at == now
    assert rows["evt_old_failed"].payload == "{}"
    assert rows["evt_new"].payload == "{}"
