r"""The notification outbox ledger: queueing rows, claiming due ones, recording each outcome.

    pending --claim--> sending --sent--------> sent
       ^                  |  \--case closed--> skipped
       |                  |  \--gave up------> dead (with the error)
       +----retry later---+
    (a `sending` row whose lease ran out is claimed again: its worker is presumed dead)

Rows are never deleted. Every time written here comes from the caller's clock, never the
database's `now()`. On PostgreSQL the claim selects with `FOR UPDATE SKIP LOCKED` and flips the
rows in the same statement, so concurrent workers never hold the same row; SQLite takes the
write lock when the transaction begins, which serialises claims just as well for one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from sqlalchemy import Select, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from processor.db.claims import claim_rows
from processor.db.models import Notification, table_of
from processor.db.upsert import insert_ignoring_conflict

NOTIFICATIONS = table_of(Notification)
MAX_ERROR_LENGTH = 2000
# Literal, not bound: PostgreSQL uses a partial index only for a condition it can read in the
# statement, and a prepared statement's parameters are unknown when it is planned.
CLAIMABLE = text("notifications.status IN ('pending', 'sending')")


@dataclass(frozen=True)
class ClaimedNotification:
    """A row this worker holds until `lease_until`; `attempts` counts this attempt too."""

    id: int
    case_id: int
    kind: str
    sequence: int
    attempts: int
    worker_id: str
    lease_until: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, up to `max_attempts` deliveries, then dead."""

    max_attempts: int = 16
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)

    def delay_after(self, attempts: int, rng: Random) -> timedelta:
        """Wait before attempt `attempts + 1`: between half and all of the doubled delay."""
        doubled = self.first_delay * (2 ** max(attempts - 1, 0))
        ceiling = min(self.max_delay, doubled)
        # Equal jitter: never sooner than half, so a crowd of failures spreads but still backs off.
        return ceiling / 2 + (ceiling / 2) * rng.random()


def queue_notification(
    session: Session,
    *,
    case_id: int,
    kind: str,
    sequence: int,
    dedup_key: str,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Add a pending row unless one with the same `dedup_key` exists; True if it was added."""
    return insert_ignoring_conflict(
        session,
        Notification,
        {
            "case_id": case_id,
            "kind": kind,
            "sequence": sequence,
            "dedup_key": dedup_key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due_at,
            "created_at": now,
            "updated_at": now,
        },
        conflict_on=["dedup_key"],
    )


def due_notification_ids(*, now: datetime, limit: int) -> Select[tuple[int]]:
    """The next `limit` due rows (or expired leases) in claim order, locked, skipping locked ones.

    `CLAIMABLE` is the condition of the partial index `ix_notifications_claimable` on
    (next_attempt_at, id): the claim walks it in order and stops after `limit` rows, stepping
    over only the rows in flight, however large the backlog.
    """
    n = NOTIFICATIONS.c
    return (
        select(n.id)
        .where(
            CLAIMABLE,
            n.next_attempt_at <= now,  # also true of every row in flight: it was due when claimed
            or_(n.status == "pending", n.claimed_until <= now),
        )
        .order_by(n.next_attempt_at, n.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def claim_due_notifications(
    session: Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedNotification]:
    """Take up to `limit` due rows (and rows whose lease ran out) for this worker."""
    n = NOTIFICATIONS.c
    due = due_notification_ids(now=now, limit=limit)
    lease_until = now + lease
    claimed = claim_rows(
        session,
        NOTIFICATIONS,
        due,
        values={
            "status": "sending",
            "claimed_by": worker_id,
            "claimed_until": lease_until,
            "attempts": n.attempts + 1,
            "updated_at": now,
        },
        returning=(n.case_id, n.kind, n.sequence, n.attempts),
    )
    return [
        ClaimedNotification(**row, worker_id=worker_id, lease_until=lease_until) for row in claimed
    ]


def mark_sent(
    session: Session,
    claimed: ClaimedNotification,
    *,
    message_id: str,
    recipient: str,
    locale: str,
    now: datetime,
) -> bool:
    """Record the delivery; False if this worker had lost the row (it may be sent twice)."""
    return _finish(
        session,
        claimed,
        status="sent",
        sent_at=now,
        message_id=message_id,
        recipient=recipient,
        locale=locale,
        claimed_until=None,
        updated_at=now,
    )


@dataclass(frozen=True)
class SentEmail:
    """A delivery to record: which claim, what went out, to whom, when."""

    claimed: ClaimedNotification
    message_id: str
    recipient: str
    locale: str
    sent_at: datetime


def mark_sent_many(session: Session, sent: Sequence[SentEmail], *, now: datetime) -> int:
    """Record several deliveries in one statement; how many rows this worker still held."""
    if not sent:
        return 0
    n = NOTIFICATIONS.c
    statement = (
        update(NOTIFICATIONS)
        .where(
            n.id == bindparam("b_id"),
            n.status == "sending",
            n.claimed_by == bindparam("b_worker"),
            n.attempts == bindparam("b_attempts"),
        )
        .values(
            status="sent",
            sent_at=bindparam("b_sent_at"),
            message_id=bindparam("b_message_id"),
            recipient=bindparam("b_recipient"),
            locale=bindparam("b_locale"),
            claimed_until=None,
            updated_at=now,
        )
    )
    result = session.connection().execute(
        statement,
        [
            {
                "b_id": email.claimed.id,
                "b_worker": email.claimed.worker_id,
                "b_attempts": email.claimed.attempts,
                "b_sent_at": email.sent_at,
                "b_message_id": email.message_id,
                "b_recipient": email.recipient,
                "b_locale": email.locale,
            }
            for email in sent
        ],
    )
    return int(result.rowcount)


def mark_skipped(session: Session, claimed: ClaimedNotification, *, now: datetime) -> bool:
    """The case closed before this email went out: nothing was sent, nothing will be."""
    return _finish(session, claimed, status="skipped", claimed_until=None, updated_at=now)


def record_failure(
    session: Session,
    claimed: ClaimedNotification,
    *,
    error: str,
    retryable: bool,
    policy: RetryPolicy,
    now: datetime,
    rng: Random,
) -> str:
    """Schedule another attempt with backoff, or give up: returns "retry" or "dead"."""
    if retryable and claimed.attempts < policy.max_attempts:
        _finish(
            session,
            claimed,
            status="pending",
            next_attempt_at=now + policy.delay_after(claimed.attempts, rng),
            last_error=error[:MAX_ERROR_LENGTH],
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
        )
        return "retry"
    _finish(
        session,
        claimed,
        status="dead",
        last_error=error[:MAX_ERROR_LENGTH],
        claimed_until=None,
        updated_at=now,
    )
    return "dead"


def _finish(session: Session, claimed: ClaimedNotification, **values: object) -> bool:
    n = NOTIFICATIONS.c
    # Only the holder of the claim may record an outcome; a worker whose lease expired and
    # whose row was claimed again must not overwrite what the new holder writes.
    result = session.execute(
        update(NOTIFICATIONS)
        .where(
            n.id == claimed.id,
            n.status == "sending",
            n.claimed_by == claimed.worker_id,
            n.attempts == claimed.attempts,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_claim(session: Session, claimed: ClaimedNotification, *, now: datetime) -> bool:
    """Give back a row not tried (shutdown, lease running out): due now, attempt uncounted."""
    return postpone_claim(session, claimed, until=now, now=now)


def postpone_claim(
    session: Session, claimed: ClaimedNotification, *, until: datetime, now: datetime
) -> bool:
    """Hand a row back to be tried later without counting an attempt (nothing was tried)."""
    n = NOTIFICATIONS.c
    return _finish(
        session,
        claimed,
        status="pending",
        attempts=n.attempts - 1,
        next_attempt_at=until,
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
    )
