"""`processor replay`: run stored events through their reducers again, from their raw payloads.

Safe to repeat: an event that is already processed is left alone unless forced, and a failed
one that succeeds becomes processed, so a second run finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import StripeEvent
from processor.errors import NotFound, PayloadInvalid
from processor.webhooks.apply import Outcome
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import reapply_event

if TYPE_CHECKING:
    from processor.runtime import Runtime


@dataclass(frozen=True)
class Replayed:
    event_id: str
    event_type: str
    outcome: Outcome
    error: str | None = None


def replay_event(deps: Runtime, event_id: str, *, force: bool = False) -> Replayed:
    """Re-apply one stored event; raise `NotFound` if it was never stored."""
    sessions, clock = deps.sessions, deps.clock
    with sessions() as session:
        row = session.execute(
            select(StripeEvent.type, StripeEvent.payload).where(StripeEvent.id == event_id)
        ).one_or_none()
    if row is None:
        raise NotFound(f"no stored event {event_id}")
    if row.payload is None:
        raise PayloadInvalid(f"the payload of {event_id} was pruned; it cannot be replayed")
    outcome = reapply_event(deps.engine, parse_event(row.payload), now=clock(), force=force)
    error = None
    if outcome is Outcome.FAILED:
        with sessions() as session:
            error = session.scalar(select(StripeEvent.error).where(StripeEvent.id == event_id))
    return Replayed(event_id, row.type, outcome, error)


def failed_event_ids(sessions: sessionmaker[Session]) -> list[str]:
    """Every event stored as failed, oldest first (Stripe's creation time)."""
    with sessions() as session:
        return list(
            session.scalars(
                select(StripeEvent.id)
                .where(StripeEvent.status == "failed")
                .order_by(StripeEvent.stripe_created_at, StripeEvent.id)
            )
        )


def replay_failed(deps: Runtime) -> Iterator[Replayed]:
    """Re-apply every failed event once, in the order Stripe created them."""
    for event_id in failed_event_ids(deps.sessions):
        yield replay_event(deps, event_id)
