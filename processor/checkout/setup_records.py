"""Writes `setup_attempts` and `payment_methods` rows from what Stripe answered synchronously.

Webhooks write the same rows, possibly first. Both sides insert-or-merge on a unique key, so
the order never matters: a row a webhook has already moved (`state_changed_at` set) keeps its
status, and details only ever fill what is missing. An `error` row whose answer was lost (no
SetupIntent id) is adopted by the first write naming its SetupIntent, and is not written at all
when that SetupIntent is already recorded, so one attempt ends as one row either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.attempts import adopt_orphan_attempts, lock_confirmation_tokens
from processor.checkout.methods import MethodChange, merge_method, method_details
from processor.clock import Clock
from processor.db.engine import unit_of_work
from processor.db.models import PaymentMethod, SetupAttempt
from processor.db.upsert import insert_ignoring_conflict
from processor.stripe_gateway import ref_id, value_of


def _recorded_setup_statement() -> Any:
    # Static, with parameters: is a SetupIntent of this customer and token already recorded?
    columns = SetupAttempt.__table__.c
    return select(
        exists().where(
            columns.customer_id == bindparam("p_customer_id", type_=columns.customer_id.type),
            columns.confirmation_token_id
            == bindparam("p_confirmation_token_id", type_=columns.confirmation_token_id.type),
            columns.setup_intent_id.is_not(None),
        )
    )


_RECORDED_SETUP = _recorded_setup_statement()


@dataclass(frozen=True)
class AttemptRecord:
    """One row of `setup_attempts` as this request saw it."""

    customer_id: str
    confirmation_token_id: str | None = None
    setup_intent_id: str | None = None
    status: str = "pending"
    payment_method_id: str | None = None
    error_code: str | None = None
    decline_code: str | None = None
    error_message: str | None = None

    def with_outcome(self, **changes: Any) -> AttemptRecord:
        return replace(self, **changes)


def record_attempt(
    sessions: sessionmaker[Session],
    clock: Clock,
    attempt: AttemptRecord,
    *,
    refreshed: bool = False,
) -> None:
    """Insert the attempt, or merge it into the row a webhook (or a replay) already wrote.

    `refreshed` means the status was just read from Stripe: it is current, so it wins even
    over a row events have moved; otherwise an event-moved row keeps its status.
    """
    now = clock()
    values = {
        "setup_intent_id": attempt.setup_intent_id,
        "customer_id": attempt.customer_id,
        "confirmation_token_id": attempt.confirmation_token_id,
        "status": attempt.status,
        "payment_method_id": attempt.payment_method_id,
        "error_code": attempt.error_code,
        "decline_code": attempt.decline_code,
        "error_message": attempt.error_message,
        "created_at": now,
        "updated_at": now,
    }
    with unit_of_work(sessions) as session:
        if attempt.setup_intent_id is None:
            _insert_without_intent(session, attempt, values)
            return
        token_id = attempt.confirmation_token_id
        if token_id is not None:
            connection = session.connection()
            lock_confirmation_tokens(connection, [token_id])
            adopt_orphan_attempts(
                connection, [(attempt.setup_intent_id, attempt.customer_id, token_id)], now=now
            )
        if not insert_ignoring_conflict(
            session, SetupAttempt, values, conflict_on=["setup_intent_id"]
        ):
            _merge_into_stored(session, attempt, refreshed=refreshed, now=now)


def _insert_without_intent(
    session: Session, attempt: AttemptRecord, values: dict[str, Any]
) -> None:
    """An attempt Stripe never answered with a SetupIntent (refused, or its answer lost)."""
    token_id = attempt.confirmation_token_id
    if attempt.status == "error" and token_id is not None:
        lock_confirmation_tokens(session.connection(), [token_id])
        if _setup_recorded(session, attempt.customer_id, token_id):
            return  # the answer was lost but a webhook already recorded the SetupIntent
    session.add(SetupAttempt(**values))


def _merge_into_stored(
    session: Session, attempt: AttemptRecord, *, refreshed: bool, now: datetime
) -> None:
    status = (
        attempt.status
        if refreshed
        else case(
            (SetupAttempt.state_changed_at.is_(None), attempt.status), else_=SetupAttempt.status
        )
    )
    merged: dict[str, Any] = {
        "customer_id": func.coalesce(SetupAttempt.customer_id, attempt.customer_id),
        "confirmation_token_id": func.coalesce(
            SetupAttempt.confirmation_token_id, attempt.confirmation_token_id
        ),
        "payment_method_id": func.coalesce(
            attempt.payment_method_id, SetupAttempt.payment_method_id
        ),
        "status": status,
        "updated_at": now,
    }
    if attempt.error_code is not None or refreshed:
        merged.update(
            error_code=attempt.error_code,
            decline_code=attempt.decline_code,
            error_message=attempt.error_message,
        )
    session.execute(
        update(SetupAttempt)
        .where(SetupAttempt.setup_intent_id == attempt.setup_intent_id)
        .values(**merged)
    )


def _setup_recorded(session: Session, customer_id: str, confirmation_token_id: str) -> bool:
    parameters = {"p_customer_id": customer_id, "p_confirmation_token_id": confirmation_token_id}
    return bool(session.connection().execute(_RECORDED_SETUP, parameters).scalar())


def record_payment_method(
    sessions: sessionmaker[Session],
    clock: Clock,
    method: Mapping[str, Any],
    *,
    setup_intent_id: str | None,
) -> PaymentMethod:
    """Store a PaymentMethod object Stripe returned, filling only what is not yet known.

    The same merge the `payment_method.attached` webhook uses, so either may come first.
    """
    now = clock()
    customer_id = ref_id(method.get("customer"))
    with unit_of_work(sessions) as session:
        change = MethodChange(
            method["id"],
            details=method_details(method),
            details_at=now,
            customer_id=customer_id,
            setup_intent_id=setup_intent_id,
            attached_at=now if customer_id else None,
        )
        merge_method(session, change, now=now)
        row = session.scalars(select(PaymentMethod).where(PaymentMethod.id == method["id"])).one()
        session.expunge(row)
        return row


def error_fields(error: Any) -> dict[str, Any]:
    """An attempt's error columns from a SetupIntent's `last_setup_error` (None: no error)."""
    return {
        "error_code": value_of(error, "code"),
        "decline_code": value_of(error, "decline_code"),
        "error_message": value_of(error, "message"),
    }
