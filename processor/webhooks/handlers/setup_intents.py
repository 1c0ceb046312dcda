"""`setup_attempts` rows from `setup_intent.*` events, and the method a success names.

Ordering: an event applies when it is newer than the row's `state_changed_at`; within the same
second the later stage of the flow wins (requires_action < failed < canceled < succeeded),
so any delivery order ends in the same row. Rows the checkout endpoint wrote
(`state_changed_at` null) always take the event's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, or_, update
from sqlalchemy.orm import Session

from processor.clock import from_unix
from processor.db import direct
from processor.db.models import SetupAttempt
from processor.db.upsert import insert_ignoring_conflict
from processor.stripe_fields import ref_id, required_id, text_or_none
from processor.webhooks.envelope import Event
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


_ATTEMPTS = SetupAttempt.__table__
_STATE_COLUMNS = (
    "status", "payment_method_id", "error_code", "decline_code", "error_message",
    "state_changed_at",
)


def _update_statement() -> Any:
    # Static, with parameters, so SQLAlchemy compiles it once. The WHERE clause is the
    # ordering rule: newer, or the same second and a later stage of the flow.
    columns = _ATTEMPTS.c
    param = {name: bindparam(f"p_{name}", type_=columns[name].type) for name in (
        *_STATE_COLUMNS, "customer_id", "updated_at"
    )}
    row_stage = case(
        ((columns.status == "requires_payment_method") & columns.error_code.is_not(None),
         STAGE["setup_failed"]),
        *((columns.status == status, stage) for status, stage in STAGE.items()),
        else_=0,
    )
    at = param["state_changed_at"]
    return (
        update(_ATTEMPTS)
        .where(
            columns.setup_intent_id == bindparam("p_setup_intent_id"),
            or_(
                columns.state_changed_at.is_(None),
                columns.state_changed_at < at,
                (columns.state_changed_at == at) & (row_stage < bindparam("p_stage")),
            ),
        )
        .values(
            {
                **{name: param[name] for name in _STATE_COLUMNS},
                "payment_method_id": func.coalesce(
                    param["payment_method_id"], columns.payment_method_id
                ),
                "customer_id": func.coalesce(columns.customer_id, param["customer_id"]),
                "updated_at": param["updated_at"],
            }
        )
    )


_UPDATE = _update_statement()


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
    parameters = {f"p_{name}": value for name, value in state.items()}
    parameters.update(p_setup_intent_id=intent_id, p_customer_id=customer_id,
                      p_updated_at=now, p_stage=STAGE[stage])
    direct.execute(session, _UPDATE, parameters)


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
