"""`setup_attempts` rows from `setup_intent.*` events, and the method a success names.

Ordering: an event applies when it is newer than the row's `state_changed_at`; within the same
second the later stage of the flow wins (requires_action < failed < canceled < succeeded),
so any delivery order ends in the same row. Rows the checkout endpoint wrote
(`state_changed_at` null) always take the event's state.

Lost answers: when Stripe's answer to the create was lost, the checkout endpoint stored an
`error` row without a SetupIntent id. The intent carries the ConfirmationToken in its metadata,
so the first write for that SetupIntent adopts that row instead of adding a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from processor.clock import from_unix
from processor.db import direct
from processor.db.locks import lock_until_commit
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
        *_STATE_COLUMNS, "customer_id", "confirmation_token_id", "updated_at"
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
                "confirmation_token_id": func.coalesce(
                    columns.confirmation_token_id, param["confirmation_token_id"]
                ),
                "updated_at": param["updated_at"],
            }
        )
    )


_UPDATE = _update_statement()


def _adopt_statement() -> Any:
    # The oldest `error` row without a SetupIntent for this customer and token takes the id,
    # unless a row already holds it (the id is unique). Its error described the lost answer,
    # not the SetupIntent, so it is cleared for the outcome written next.
    orphan = _ATTEMPTS.alias("orphan")
    known = _ATTEMPTS.alias("known")
    intent_id = bindparam("p_setup_intent_id", type_=_ATTEMPTS.c.setup_intent_id.type)
    oldest_orphan = (
        select(func.min(orphan.c.id))
        .where(
            orphan.c.setup_intent_id.is_(None),
            orphan.c.customer_id == bindparam("p_customer_id", type_=orphan.c.customer_id.type),
            orphan.c.confirmation_token_id
            == bindparam("p_confirmation_token_id", type_=orphan.c.confirmation_token_id.type),
            orphan.c.status == "error",
        )
        .scalar_subquery()
    )
    return (
        update(_ATTEMPTS)
        .where(
            _ATTEMPTS.c.id == oldest_orphan,
            ~exists().where(known.c.setup_intent_id == intent_id),
        )
        .values(
            setup_intent_id=intent_id,
            error_code=None,
            decline_code=None,
            error_message=None,
            updated_at=bindparam("p_updated_at", type_=_ATTEMPTS.c.updated_at.type),
        )
    )


_ADOPT_ORPHAN = _adopt_statement()


def lock_confirmation_token(session: Session, confirmation_token_id: str) -> None:
    """Serialise, until commit, every write of an attempt made with this ConfirmationToken.

    The webhook adopting an `error` row and the checkout endpoint deciding whether to write
    one would not see each other's uncommitted rows on PostgreSQL, and an orphan would stay.
    A transaction-scoped advisory lock makes the second wait; SQLite has one writer anyway.
    """
    lock_until_commit(session, confirmation_token_id)


def adopt_orphan_attempt(
    session: Session,
    *,
    setup_intent_id: str,
    customer_id: str,
    confirmation_token_id: str,
    now: datetime,
) -> None:
    """Give this SetupIntent's id to the `error` row its lost create answer left, if any.

    The insert-or-merge that follows then finds that row, so one attempt stays one row.
    """
    lock_confirmation_token(session, confirmation_token_id)
    direct.execute(
        session,
        _ADOPT_ORPHAN,
        {
            "p_setup_intent_id": setup_intent_id,
            "p_customer_id": customer_id,
            "p_confirmation_token_id": confirmation_token_id,
            "p_updated_at": now,
        },
    )


def confirmation_token_of(intent: dict[str, Any]) -> str | None:
    """The ConfirmationToken our checkout endpoint put in the intent's metadata, if any."""
    metadata = intent.get("metadata")
    if not isinstance(metadata, dict):
        return None
    return text_or_none(metadata.get("confirmation_token")) or None


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
    token_id = confirmation_token_of(intent)
    if token_id is not None and customer_id is not None:
        adopt_orphan_attempt(
            session,
            setup_intent_id=intent_id,
            customer_id=customer_id,
            confirmation_token_id=token_id,
            now=now,
        )
    created = intent.get("created")
    inserted = insert_ignoring_conflict(
        session,
        SetupAttempt,
        {
            "setup_intent_id": intent_id,
            "customer_id": customer_id,
            "confirmation_token_id": token_id,
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
                      p_confirmation_token_id=token_id, p_updated_at=now, p_stage=STAGE[stage])
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
