"""The reminder schedule: REMINDER_SCHEDULE offsets after the first email, while the case is open.

Reminders are queued when the first email is recorded as sent, in the same transaction, so
their times count from the email the customer actually received. Closing the case cancels
the ones still pending (`processor.recovery.cases`), and the notifier re-checks the case before
sending each one, so none goes out after recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from processor.db.models import Notification, RecoveryCase
from processor.db.upsert import insert_ignoring_conflict_statement
from processor.recovery.cases import REMINDER_NOTIFICATION, notification_dedup_key

# While a payment settles (a SEPA debit takes days) a reminder would ask for money already on
# its way; it waits this long and looks again.
SETTLING_STATUSES = frozenset({"processing", "requires_capture", "succeeded"})
SETTLING_RECHECK = timedelta(hours=12)


def payment_settling(stripe_client: stripe.StripeClient, payment_intent_id: str) -> bool:
    """True when Stripe says the PaymentIntent is paid or being paid, before our webhook did.

    If Stripe cannot be asked, the answer is False: our own record says the case is open.
    """
    try:
        intent = stripe_client.v1.payment_intents.retrieve(payment_intent_id)
    except stripe.StripeError:
        return False
    return str(intent.status) in SETTLING_STATUSES


def reminder_times(first_sent_at: datetime, schedule: Sequence[timedelta]) -> list[datetime]:
    """When each reminder falls due: every offset counts from the first email."""
    return [first_sent_at + offset for offset in sorted(schedule)]


def schedule_reminders_many(
    session: Session,
    first_sent: Mapping[int, datetime],
    *,
    schedule: Sequence[timedelta],
    now: datetime,
) -> int:
    """Queue reminders for each open case in `first_sent` (case id -> when its first email
    went out), once: each has its own dedup key. Returns how many were added."""
    if not first_sent or not schedule:
        return 0
    open_cases = session.scalars(
        select(RecoveryCase.id).where(
            RecoveryCase.id.in_(list(first_sent)), RecoveryCase.status == "open"
        )
    ).all()
    rows = [
        {
            "case_id": case_id,
            "kind": REMINDER_NOTIFICATION,
            "sequence": sequence,
            "dedup_key": notification_dedup_key(case_id, sequence),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due_at,
            "created_at": now,
            "updated_at": now,
        }
        for case_id in sorted(open_cases)
        for sequence, due_at in enumerate(reminder_times(first_sent[case_id], schedule), start=1)
    ]
    if not rows:
        return 0
    # One compiled statement run for every row (executemany): on the notifier's hot path a
    # multi-row VALUES clause would be compiled anew for each batch.
    statement = insert_ignoring_conflict_statement(
        session.get_bind().dialect.name, Notification.__table__, ("dedup_key",)
    )
    result = session.connection().execute(statement, rows)
    return int(result.rowcount)
