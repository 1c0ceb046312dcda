"""The retry ladder end to end against the sandbox: schedule, worker, emails, stops."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from processor.charging import ChargeOptions, ChargeRequest, charge_off_session
from processor.charging.retrier import Retrier
from processor.clock import utc_now
from processor.db.models import ChargeRetry, Notification
from processor.recovery.cases import close_case
from processor.recovery.retries import retries_of_case
from processor.runtime import Runtime
from tests.integration.charging.conftest import FAST_RETRY, cases, charge_row

THEN_SUCCEEDS = "pm_card_sandbox_insufficientFundsThenSucceeds"
NEVER_AGAIN = "pm_card_sandbox_chargeDeclinedDoNotTryAgain"
ALWAYS_SOFT = "pm_card_chargeCustomerFail"


def _retrier(runtime: Runtime, worker_id: str = "w1") -> Retrier:
    return Retrier(runtime, charge_options=ChargeOptions(retry=FAST_RETRY), worker_id=worker_id)


def _declined_charge(runtime: Runtime, sandbox: Any, card: str, reference: str) -> int:
    customer, _method = sandbox.saved_card(f"{reference}@example.com", card)
    outcome = charge_off_session(
        runtime,
        ChargeRequest(customer, 1999, "usd", reference=reference),
        ChargeOptions(retry=FAST_RETRY),
    )
    assert outcome.status == "failed"
    (case,) = cases(runtime.sessions)
    return case.id


def _retries(runtime: Runtime, case_id: int) -> list[ChargeRetry]:
    with runtime.sessions() as session:
        return retries_of_case(session, case_id)


def _first_email(runtime: Runtime, case_id: int) -> Notification:
    with runtime.sessions() as session:
        return session.scalars(
            select(Notification).where(Notification.case_id == case_id, Notification.sequence == 0)
        ).one()


def _sent_under(sandbox: Any, key: str) -> int:
    return len(sandbox.control.charges_for(idempotency_key=key))


def test_a_soft_decline_is_retried_on_the_same_intent_and_recovered(
    runtime: Runtime, sandbox: Any, clock: Any
) -> None:
    case_id = _declined_charge(runtime, sandbox, THEN_SUCCEEDS, "R-payday")
    opened = clock()

    (scheduled,) = _retries(runtime, case_id)
    assert (scheduled.attempt, scheduled.status) == (1, "scheduled")
    assert scheduled.due_at == opened + timedelta(days=1)
    assert scheduled.idempotency_key == "charge:R-payday:retry:1"
    assert _first_email(runtime, case_id).next_attempt_at == opened  # with the first decline

    clock.advance(hours=23)
    assert _retrier(runtime).run_once().counts["recovered"] == 0

    clock.advance(hours=1)
    tally = _retrier(runtime).run_once()

    assert tally.counts["recovered"] == 1
    (done,) = _retries(runtime, case_id)
    assert done.status == "succeeded" and done.charge_id is not None
    (case,) = cases(runtime.sessions)
    assert case.status == "recovered"
    assert case.payment_intent_id == charge_row(runtime.sessions, "R-payday").payment_intent_id
    assert charge_row(runtime.sessions, "R-payday").status == "succeeded"
    assert _first_email(runtime, case_id).status == "canceled"
    assert _sent_under(sandbox, "charge:R-payday:retry:1") == 1


def test_do_not_try_again_is_never_retried(runtime: Runtime, sandbox: Any, clock: Any) -> None:
    case_id = _declined_charge(runtime, sandbox, NEVER_AGAIN, "R-never")

    assert _retries(runtime, case_id) == []
    clock.advance(days=40)
    assert _retrier(runtime).run_once().counts == {}


def test_the_whole_ladder_then_the_email_after_the_first_failed_retry(
    runtime: Runtime, sandbox: Any, clock: Any
) -> None:
    runtime = replace(
        runtime, settings=replace(runtime.settings, retry_first_email="after_first_retry")
    )
    case_id = _declined_charge(runtime, sandbox, ALWAYS_SOFT, "R-ladder")
    opened = clock()
    assert _first_email(runtime, case_id).next_attempt_at == opened + timedelta(days=1, hours=1)

    clock.now = opened + timedelta(days=1)
    assert _retrier(runtime).run_once().counts["declined"] == 1
    assert _first_email(runtime, case_id).next_attempt_at == clock()  # released
    for day in (3, 5):
        clock.now = opened + timedelta(days=day)
        assert _retrier(runtime).run_once().counts["declined"] == 1
    clock.advance(days=30)
    assert _retrier(runtime).run_once().counts == {}

    attempts = _retries(runtime, case_id)
    assert [(r.attempt, r.status) for r in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert [r.due_at - opened for r in attempts] == [timedelta(days=d) for d in (1, 3, 5)]
    assert all(r.advice_code == "try_again_later" for r in attempts)
    (case,) = cases(runtime.sessions)
    assert case.status == "open" and case.failure_count == 4
    for attempt in (1, 2, 3):
        assert _sent_under(sandbox, f"charge:R-ladder:retry:{attempt}") == 1


def test_paying_on_the_recovery_page_stops_the_retries(
    runtime: Runtime, sandbox: Any, clock: Any
) -> None:
    case_id = _declined_charge(runtime, sandbox, ALWAYS_SOFT, "R-page")
    (case,) = cases(runtime.sessions)
    with runtime.sessions.begin() as session:
        close_case(session, case.payment_intent_id, status="recovered", at=clock(), now=clock())

    clock.advance(days=2)

    assert _retrier(runtime).run_once().counts == {}
    assert [r.status for r in _retries(runtime, case_id)] == ["canceled"]
    assert _sent_under(sandbox, "charge:R-page:retry:1") == 0


class _Killed(BaseException):
    """Stands for SIGKILL between Stripe's answer and its record (nothing after it runs)."""


class _DiesAfterSending(Retrier):
    def _recovered(self, retry: Any, intent: Any) -> str:
        raise _Killed


def test_a_killed_worker_is_replaced_and_nothing_is_charged_twice(
    runtime: Runtime, sandbox: Any, clock: Any
) -> None:
    case_id = _declined_charge(runtime, sandbox, THEN_SUCCEEDS, "R-crash")
    clock.advance(days=1)
    dying = _DiesAfterSending(
        runtime, charge_options=ChargeOptions(retry=FAST_RETRY), worker_id="dead"
    )
    with pytest.raises(_Killed):
        dying.run_once()
    assert [r.status for r in _retries(runtime, case_id)] == ["running"]

    assert _retrier(runtime, "w2").run_once().counts == {}  # the dead worker's lease holds
    clock.advance(minutes=11)
    tally = _retrier(runtime, "w2").run_once()

    assert tally.counts["recovered"] == 1
    assert [r.status for r in _retries(runtime, case_id)] == ["succeeded"]
    assert _sent_under(sandbox, "charge:R-crash:retry:1") == 1
    (case,) = cases(runtime.sessions)
    assert case.status == "recovered"


def test_a_slow_batch_leaves_what_its_lease_cannot_cover_to_the_next_claim(
    runtime: Runtime, sandbox: Any, clock: Any
) -> None:
    first = _declined_charge(runtime, sandbox, THEN_SUCCEEDS, "R-slow-1")
    customer, _method = sandbox.saved_card("slow2@example.com", THEN_SUCCEEDS)
    charge_off_session(
        runtime,
        ChargeRequest(customer, 500, "usd", reference="R-slow-2"),
        ChargeOptions(retry=FAST_RETRY),
    )
    second = next(case.id for case in cases(runtime.sessions) if case.id != first)
    clock.advance(days=1)
    slow = ChargeOptions(retry=FAST_RETRY, before_request=lambda: clock.advance(minutes=9))

    tally = Retrier(runtime, charge_options=slow, worker_id="slow").run_once()

    assert (tally.counts["recovered"], tally.counts["deferred"]) == (1, 1)
    statuses = {r.case_id: r.status for c in (first, second) for r in _retries(runtime, c)}
    assert sorted(statuses.values()) == ["running", "succeeded"]
    clock.advance(minutes=2)
    assert _retrier(runtime, "next").run_once().counts["recovered"] == 1
    for key in ("charge:R-slow-1:retry:1", "charge:R-slow-2:retry:1"):
        assert _sent_under(sandbox, key) == 1


def test_the_schedule_under_freezegun_with_the_real_clock(runtime: Runtime, sandbox: Any) -> None:
    with freeze_time("2026-11-30 09:00:00") as frozen:
        runtime = replace(runtime, clock=utc_now)
        case_id = _declined_charge(runtime, sandbox, THEN_SUCCEEDS, "R-frozen")
        opened = utc_now()
        frozen.move_to(opened + timedelta(days=1) - timedelta(seconds=1))
        assert _retrier(runtime).run_once().counts == {}
        frozen.move_to(opened + timedelta(days=1))
        assert _retrier(runtime).run_once().counts["recovered"] == 1
        frozen.move_to(opened + timedelta(days=30))
        assert _retrier(runtime).run_once().counts == {}

        (done,) = _retries(runtime, case_id)
        assert (done.status, done.finished_at) == ("succeeded", opened + timedelta(days=1))
        assert _first_email(runtime, case_id).status == "canceled"
