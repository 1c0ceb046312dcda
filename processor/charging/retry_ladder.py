"""The retry ladder: after each decline of a charge, whether and when it is tried again, and
when the customer's first email may go.

Called in the transaction that records the decline, so a retry is scheduled exactly when its
decline is stored. Offsets count from the first decline (RETRY_SCHEDULE); at most
`MAX_RETRIES` retries, so four attempts in all, far inside the networks' reattempt limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from processor.charging.decline_policy import Decline, DeclineAction, classify_decline
from processor.config import Settings
from processor.recovery.cases import PaymentFailure, record_payment_failure
from processor.recovery.retries import (
    EMAIL_HOLD_MARGIN,
    case_opened_at,
    hold_first_email,
    release_first_email,
    schedule_retry,
)
from processor.stripe_gateway import value_of

# Two attempts are never closer than this, even when a worker catches up on a backlog.
MIN_RETRY_GAP = timedelta(hours=1)
AFTER_FIRST_RETRY = "after_first_retry"


def decline_from_error(error: Any) -> Decline:
    """The decision fields of a Stripe error object (or `last_payment_error`)."""
    return Decline(
        code=value_of(error, "code"),
        decline_code=value_of(error, "decline_code"),
        advice_code=value_of(error, "advice_code"),
        network_advice_code=value_of(error, "network_advice_code"),
        network_decline_code=value_of(error, "network_decline_code"),
    )


def record_decline(
    session: Session,
    settings: Settings,
    failure: PaymentFailure,
    *,
    reference: str,
    decline: Decline | None,
    attempts_done: int,
) -> datetime | None:
    """Open or update the PaymentIntent's recovery case, then plan after `decline` (None: no
    retry is planned, the first email waits as it is); when the next retry is due."""
    now = failure.failed_at
    case_id = record_payment_failure(session, failure, now=now)
    if decline is None:
        return None
    return plan_after_decline(
        session,
        settings,
        case_id=case_id,
        reference=reference,
        payment_intent_id=failure.payment_intent_id,
        payment_method_id=failure.payment_method_id,
        decline=decline,
        attempts_done=attempts_done,
        now=now,
    )


def plan_after_decline(
    session: Session,
    settings: Settings,
    *,
    case_id: int,
    reference: str,
    payment_intent_id: str,
    payment_method_id: str | None,
    decline: Decline,
    attempts_done: int,
    now: datetime,
) -> datetime | None:
    """Schedule the next retry if the policy and the schedule allow one; when it is due.

    `attempts_done` counts the retries already made (0 after the original charge's decline).
    """
    schedule = settings.retry_schedule
    action = classify_decline(
        decline.code,
        decline.decline_code,
        decline.advice_code,
        decline.network_advice_code,
        decline.network_decline_code,
    )
    opened = case_opened_at(session, case_id)
    allowed = (
        action is DeclineAction.RETRY
        and payment_method_id is not None
        and attempts_done < len(schedule)
        and opened is not None
        and opened[1] == "open"
    )
    if not allowed or opened is None:
        release_first_email(session, case_id, now=now)
        return None
    due_at = max(opened[0] + schedule[attempts_done], now + MIN_RETRY_GAP)
    schedule_retry(
        session,
        case_id=case_id,
        reference=reference,
        payment_intent_id=payment_intent_id,
        payment_method_id=payment_method_id,
        attempt=attempts_done + 1,
        due_at=due_at,
        now=now,
    )
    if settings.retry_first_email == AFTER_FIRST_RETRY and attempts_done == 0:
        hold_first_email(session, case_id, due_at + EMAIL_HOLD_MARGIN, now=now)
    else:
        release_first_email(session, case_id, now=now)
    return due_at
