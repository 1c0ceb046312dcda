r"""The retry ledger: automatic retries of a declined charge, one `charge_retries` row each.

    scheduled --claim--> running --approved--> succeeded (the case is recovered)
        |                   |  \--declined---> failed (the next one is scheduled if allowed)
        |                   +--lease ran out: claimed again, resent under the same key
        +--case closed (paid on the page, canceled)--> canceled

A row is written before its request is sent and carries its own idempotency key
(`charge:<reference>:retry:<n>`), so a worker that dies mid-request resends the very same
request and Stripe answers it from its idempotency store. Every retry confirms the same
PaymentIntent, which Stripe lets succeed once: no sequence of retries and page payments can
charge a reference twice. Times come from the caller's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.orm import Session

from processor.db.claims import claim_rows
from processor.db.models import ChargeRetry, Notification, RecoveryCase, table_of
from processor.db.upsert import insert_ignoring_conflict

RETRIES = table_of(ChargeRetry)
_NOTIFICATIONS = table_of(Notification)
# The first email, when held for the first retry, waits this long past the retry's due time,
# so that a retry worker running a little late still decides before the notifier sends.
EMAIL_HOLD_MARGIN = timedelta(hours=1)


class DeclineFields(Protocol):
    """What a declined retry records (`processor.charging.decline_policy.Decline` has it)."""

    @property
    def code(self) -> str | None: ...
    @property
    def decline_code(self) -> str | None: ...
    @property
    def advice_code(self) -> str | None: ...
    @property
    def network_advice_code(self) -> str | None: ...
    @property
    def network_decline_code(self) -> str | None: ...


@dataclass(frozen=True)
class ClaimedRetry:
    """A retry this worker holds until `lease_until`."""

    id: int
    case_id: int
    charge_reference: str
    payment_intent_id: str
    payment_method_id: str | None
    attempt: int
    idempotency_key: str
    lease_until: datetime


def retry_idempotency_key(reference: str, attempt: int) -> str:
    return f"charge:{reference}:retry:{attempt}"


def schedule_retry(
    session: Session,
    *,
    case_id: int,
    reference: str,
    payment_intent_id: str,
    payment_method_id: str | None,
    attempt: int,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Write retry `attempt` of a case once (a rerun adds nothing); True if it was added."""
    return insert_ignoring_conflict(
        session,
        ChargeRetry,
        {
            "case_id": case_id,
            "charge_reference": reference,
            "payment_intent_id": payment_intent_id,
            "payment_method_id": payment_method_id,
            "attempt": attempt,
            "idempotency_key": retry_idempotency_key(reference, attempt),
            "status": "scheduled",
            "due_at": due_at,
            "created_at": now,
            "updated_at": now,
        },
        conflict_on=["idempotency_key"],
    )


def case_opened_at(session: Session, case_id: int) -> tuple[datetime, str] | None:
    """When the case opened (retry offsets count from it) and its status."""
    row = session.execute(
        select(RecoveryCase.opened_at, RecoveryCase.status).where(RecoveryCase.id == case_id)
    ).one_or_none()
    return (row.opened_at, row.status) if row is not None else None


def hold_first_email(session: Session, case_id: int, until: datetime, *, now: datetime) -> None:
    """Delay the case's first email (still pending) until the first retry has been tried."""
    n = _NOTIFICATIONS.c
    session.execute(
        update(_NOTIFICATIONS)
        .where(n.case_id == case_id, n.sequence == 0, n.status == "pending")
        .values(next_attempt_at=until, updated_at=now)
    )


def release_first_email(session: Session, case_id: int, *, now: datetime) -> None:
    """Let a held first email go now: the retries did not win the payment back."""
    n = _NOTIFICATIONS.c
    session.execute(
        update(_NOTIFICATIONS)
        .where(
            n.case_id == case_id, n.sequence == 0, n.status == "pending", n.next_attempt_at > now
        )
        .values(next_attempt_at=now, updated_at=now)
    )


def claim_due_retries(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedRetry]:
    """Take up to `limit` due retries of open cases (and retries whose lease ran out)."""
    r = RETRIES.c
    open_case = select(RecoveryCase.id).where(
        RecoveryCase.id == r.case_id, RecoveryCase.status == "open"
    )
    due = (
        select(r.id)
        .where(
            or_(
                and_(r.status == "scheduled", r.due_at <= now),
                and_(r.status == "running", r.claimed_until <= now),
            ),
            open_case.exists(),
        )
        .order_by(r.due_at, r.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=RETRIES)
    )
    lease_until = now + lease
    claimed = claim_rows(
        session,
        RETRIES,
        due,
        values={
            "status": "running",
            "claimed_by": worker_id,
            "claimed_until": lease_until,
            "updated_at": now,
        },
        returning=(
            r.case_id,
            r.charge_reference,
            r.payment_intent_id,
            r.payment_method_id,
            r.attempt,
            r.idempotency_key,
        ),
    )
    return [ClaimedRetry(**row, lease_until=lease_until) for row in claimed]


def finish_retry(
    session: Session,
    claimed: ClaimedRetry,
    *,
    worker_id: str,
    status: str,
    now: datetime,
    charge_id: str | None = None,
    decline: DeclineFields | None = None,
    message: str | None = None,
) -> bool:
    """Record a running retry's outcome; False if this worker no longer holds it (its lease ran
    out and another worker took it over: that worker sends the same request and records it)."""
    result = session.execute(
        update(RETRIES)
        .where(
            RETRIES.c.id == claimed.id,
            RETRIES.c.status == "running",
            RETRIES.c.claimed_by == worker_id,
            RETRIES.c.claimed_until == claimed.lease_until,
        )
        .values(
            status=status,
            charge_id=charge_id,
            error_code=decline.code if decline else None,
            decline_code=decline.decline_code if decline else None,
            advice_code=decline.advice_code if decline else None,
            network_advice_code=decline.network_advice_code if decline else None,
            network_decline_code=decline.network_decline_code if decline else None,
            error_message=message,
            claimed_until=None,
            finished_at=now,
            updated_at=now,
        )
        .execution_options(preserve_rowcount=True)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def cancel_retries(connection: Connection, case_ids: Sequence[int], *, now: datetime) -> None:
    """Stop the retries still waiting for closed cases (paid on the page, or canceled).

    A retry already running is left to finish: it confirms the same PaymentIntent, which
    Stripe refuses once paid, so it cannot charge again.
    """
    if case_ids:
        connection.execute(
            update(RETRIES)
            .where(RETRIES.c.case_id.in_(list(case_ids)), RETRIES.c.status == "scheduled")
            .values(status="canceled", updated_at=now, finished_at=now)
        )


def retries_of_case(session: Session, case_id: int) -> list[ChargeRetry]:
    """Every retry of a case, in order: its attempts, for the console and tests."""
    return list(
        session.scalars(
            select(ChargeRetry).where(ChargeRetry.case_id == case_id).order_by(ChargeRetry.attempt)
        )
    )
