"""The reminder schedule: REMINDER_SCHEDULE offsets after the first email, while the case is open.

Reminders are queued when the first email is recorded as sent, in the same transaction, so
their times count from the email the customer actually received. Closing the case cancels
the ones still pending (see `cases.close_case`), and the notifier re-checks the case before
sending each one, so none goes out after recovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from processor.db.models import RecoveryCase
from processor.recovery.cases import REMINDER_NOTIFICATION, notification_dedup_key
from processor.recovery.outbox import queue_notification


def reminder_times(first_sent_at: datetime, schedule: Sequence[timedelta]) -> list[datetime]:
    """When each reminder falls due: every offset counts from the first email."""
    return [first_sent_at + offset for offset in sorted(schedule)]


def schedule_reminders(
    session: Session,
    case_id: int,
    *,
    first_sent_at: datetime,
    schedule: Sequence[timedelta],
    now: datetime,
) -> int:
    """Queue the case's reminders (once: each has its own dedup key); how many were added."""
    status = session.scalar(select(RecoveryCase.status).where(RecoveryCase.id == case_id))
    if status != "open":
        return 0
    added = 0
    for sequence, due_at in enumerate(reminder_times(first_sent_at, schedule), start=1):
        added += queue_notification(
            session,
            case_id=case_id,
            kind=REMINDER_NOTIFICATION,
            sequence=sequence,
            dedup_key=notification_dedup_key(case_id, sequence),
            due_at=due_at,
            now=now,
        )
    return added
