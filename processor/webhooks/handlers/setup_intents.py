"""`setup_attempts` rows from `setup_intent.*` events, and the method a success names.

Ordering: an event applies when it is newer than the row's `state_changed_at`; within the same
second the later stage of the flow wins (requires_action < failed < canceled < succeeded),
so any delivery order ends in the same row. Rows the checkout endpoint wrote
(`state_changed_at` null) always take the event's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, or_, update
from sqlalchemy.orm import Session

from processor.clock import from_unix
from processor.db.models import SetupAttempt
from processor.db.types import UTCDateTime
from processor.db.upsert import insert_ignoring_conflict
from processor.webhooks.envelope import Event
from processor.webhooks.handlers import ref_id, required_id, text_or_none
from processor.webhooks.handlers.payment_methods import merge_method

# Tie-break for events of the same second: how far along the flow each state is.
STAGE = {
    "requires_payment_method": 1,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "setup_failed": 4,
    "canceled": 5,
    "succeeded": 6,
}


def _stage_of_row() -> Any:
    # Rows store Stripe's status; a failed attempt is `requires_payment_method` with an error.
    return case(
        (
            (SetupAttempt.status == "requires_payment_method")
            & SetupAttempt.error_code.is_not(None),
            STAGE["setup_failed"],
        ),
        *((SetupAttempt.status == status, stage) for status, stage in STAGE.items()),
        else_=0,
    )


def apply_setup_state(
    session: Session, event: Event, now: datetime, *, stage: str, error: dict[str, Any] | None
) -> None:
    """Move the attempt to the state this event reports, unless a newer state is stored."""
    intent = event.object
    intent_id = required_id(intent)
    error = error or {}
    state = {
        "status": text_or_none(intent.get("status")) or "requires_payment_method",
        "payment_method_id": ref_id(intent.get("payment_method")),
        "error_code": text_or_none(error.get("code")),
        "decline_code": text_or_none(error.get("decline_code")),
        "error_message": text_or_none(error.get("message")),
        "state_changed_at": event.created,
    }
    customer_id = ref_id(intent.get("customer"))
    created = intent.get("created")
    inserted = insert_ignoring_conflict(
        session,
        SetupAttempt,
        {
            "setup_intent_id": intent_id,
            "customer_id": customer_id,
            **state,
            "created_at": from_unix(created) if isinstance(created, int) else event.created,
            "updated_at": now,
        },
        conflict_on=["setup_intent_id"],
    )
    if inserted:
        return
    at = literal(event.created, UTCDateTime())
    session.execute(
        update(SetupAttempt)
        .where(
            SetupAttempt.setup_intent_id == intent_id,
            or_(
                SetupAttempt.state_changed_at.is_(None),
                SetupAttempt.state_changed_at < at,
                (SetupAttempt.state_changed_at == at) & (_stage_of_row() < STAGE[stage]),
            ),
        )
        .values(
            {
                **state,
                "payment_method_id": func.coalesce(
                    state["payment_method_id"], SetupAttempt.payment_method_id
                ),
                "customer_id": func.coalesce(SetupAttempt.customer_id, customer_id),
                "updated_at": now,
            }
        )
    )


def on_setup_intent_succeeded(session: Session, event: Event, now: datetime) -> None:
    apply_setup_state(session, event, now, stage="succeeded", error=None)
    method_id = ref_id(event.object.get("payment_method"))
    if method_id is None:
        return
    customer_id = ref_id(event.object.get("customer"))
    # The event names the method only; `payment_method.attached` (or the background
    # completion) brings its details.
    merge_method(
        session,
        method_id,
        now=now,
        customer_id=customer_id,
        setup_intent_id=required_id(event.object),
        attached_at=event.created if customer_id else None,
    )


def on_setup_intent_setup_failed(session: Session, event: Event, now: datetime) -> None:
    error = event.object.get("last_setup_error")
    apply_setup_state(
        session, event, now, stage="setup_failed", error=error if isinstance(error, dict) else None
    )


def on_setup_intent_requires_action(session: Session, event: Event, now: datetime) -> None:
    apply_setup_state(session, event, now, stage="requires_action", error=None)


def on_setup_intent_canceled(session: Session, event: Event, now: datetime) -> None:
    apply_setup_state(session, event, now, stage="canceled", error=None)
