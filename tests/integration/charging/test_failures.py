"""When Stripe is slow, limited, failing or unreachable: retried under the same key, never twice."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from processor.charging import (
    BatchOptions,
    ChargeOptions,
    ChargeRequest,
    ChargeUnresolved,
    RetryPolicy,
    charge_off_session,
    run_batch,
)
from processor.charging.csvfile import BatchRow
from processor.runtime import Runtime
from tests.integration.charging.conftest import attempts_for, cases, charge_row

NO_RETRY = ChargeOptions(retry=RetryPolicy(attempts=1))


def saved_rows(sandbox: Any, count: int, card: str = "pm_card_visa") -> list[BatchRow]:
    rows = []
    for index in range(count):
        customer, method = sandbox.saved_card(f"storm{index}@example.com", card)
        request = ChargeRequest(
            customer, 1000 + index, "usd", payment_method_id=method, reference=f"storm-{index}"
        )
        rows.append(BatchRow(line=index + 2, request=request.validated()))
    return rows


def test_a_lost_answer_leaves_the_charge_pending_and_a_rerun_resolves_it(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, method = sandbox.saved_card("lost@example.com", "pm_card_visa")
    request = ChargeRequest(
        customer, 1999, "jpy", payment_method_id=method, reference="lost-answer"
    )
    # Stripe charges the card, but the answer is lost on the way back, and we give up at once.
    sandbox.control.inject_errors(1.0, after_execution=True)
    with pytest.raises(ChargeUnresolved, match="stays pending") as caught:
        charge_off_session(runtime, request, NO_RETRY)
    assert caught.value.reference == "lost-answer"
    row = charge_row(runtime.sessions, "lost-answer")
    assert (row.status, row.payment_intent_id, row.attempt_count) == ("pending", None, 1)
    assert row.error_message is not None and "500" in row.error_message
    assert attempts_for(sandbox, "lost-answer") == 1

    sandbox.control.inject_errors(0.0)
    outcome = charge_off_session(runtime, request, fast)
    assert outcome.status == "succeeded" and not outcome.resumed
    assert attempts_for(sandbox, "lost-answer") == 1
    row = charge_row(runtime.sessions, "lost-answer")
    assert (row.status, row.payment_intent_id, row.attempt_count) == (
        "succeeded",
        outcome.payment_intent_id,
        2,
    )


def test_a_lost_answer_is_recovered_by_the_retry_from_stripes_idempotency_store(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, method = sandbox.saved_card("lost-retry@example.com", "pm_card_visa")
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="lr")
    sandbox.control.inject_errors(1.0, after_execution=True)
    # The network heals while we back off; the retry is answered from Stripe's store.
    heals = ChargeOptions(
        retry=fast.retry, sleep=lambda _seconds: sandbox.control.inject_errors(0.0)
    )
    outcome = charge_off_session(runtime, request, heals)
    assert outcome.status == "succeeded"
    assert charge_row(runtime.sessions, "lr").attempt_count == 2
    assert attempts_for(sandbox, "lr") == 1


def test_a_timeout_after_sending_leaves_the_charge_pending(runtime: Runtime, sandbox: Any) -> None:
    customer, method = sandbox.saved_card("timeout@example.com", "pm_card_visa")
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="timed-out")
    impatient = sandbox.new_client(
        max_network_retries=0, http_client=stripe.RequestsClient(timeout=0.2)
    )
    sandbox.control.set_latency(0.6)
    hasty = Runtime(
        settings=runtime.settings,
        engine=runtime.engine,
        sessions=runtime.sessions,
        stripe=impatient,
        clock=runtime.clock,
    )
    with pytest.raises(ChargeUnresolved):
        charge_off_session(hasty, request, NO_RETRY)
    assert charge_row(runtime.sessions, "timed-out").status == "pending"

    # The same reference again, at once: Stripe answers 409 while the first request is still
    # running, then replays its result; patient retries ride that out.
    patient = ChargeOptions(retry=RetryPolicy(attempts=10, base_delay=0.1, max_delay=0.5))
    outcome = charge_off_session(runtime, request, patient)
    assert outcome.status == "succeeded"
    sandbox.control.set_latency(0.0)
    assert attempts_for(sandbox, "timed-out") == 1


def test_an_answer_stripe_says_not_to_retry_is_not_retried(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, method = sandbox.saved_card("noretry@example.com", "pm_card_visa")
    sandbox.control.inject_errors(1.0, should_retry=False)
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="nr")
    with pytest.raises(ChargeUnresolved):
        charge_off_session(runtime, request, fast)
    assert charge_row(runtime.sessions, "nr").attempt_count == 1


def test_a_429_storm_is_ridden_out_and_nobody_is_charged_twice(
    runtime: Runtime, sandbox: Any
) -> None:
    rows = saved_rows(sandbox, 12)
    sandbox.control.set_rate_limit(5)
    options = BatchOptions(
        concurrency=6, rate=100, retry=RetryPolicy(attempts=12, base_delay=0.05, max_delay=0.5)
    )
    summary = run_batch(runtime, rows, options)
    sandbox.control.set_rate_limit(None)

    assert summary.counts["succeeded"] == 12 and summary.errors == 0
    sent = [charge_row(runtime.sessions, row.request.reference or "").attempt_count for row in rows]
    assert sum(sent) > 12  # the limit answered 429 and we asked again
    for row in rows:
        assert attempts_for(sandbox, row.request.reference or "") == 1


@pytest.mark.parametrize("after_execution", [False, True], ids=["before", "after-executing"])
def test_injected_500s_are_retried_under_the_same_key(
    runtime: Runtime, sandbox: Any, after_execution: bool
) -> None:
    rows = saved_rows(sandbox, 12)
    sandbox.control.inject_errors(0.5, after_execution=after_execution, seed=7)
    options = BatchOptions(concurrency=4, rate=200, retry=RetryPolicy(12, 0.02, 0.2))
    summary = run_batch(runtime, rows, options)
    sandbox.control.inject_errors(0.0)

    assert summary.counts["succeeded"] == 12 and summary.errors == 0
    for row in rows:
        assert attempts_for(sandbox, row.request.reference or "") == 1


@pytest.mark.parametrize(
    ("card", "status"),
    [("pm_card_visa", "succeeded"), ("pm_card_chargeCustomerFail", "failed")],
)
def test_a_charge_pending_past_the_key_window_is_looked_up_not_sent_again(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, clock: Any, card: str, status: str
) -> None:
    customer, method = sandbox.saved_card("stale@example.com", card)
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="stale")
    sandbox.control.inject_errors(1.0, after_execution=True)
    with pytest.raises(ChargeUnresolved):
        charge_off_session(runtime, request, NO_RETRY)
    sandbox.control.inject_errors(0.0)
    # A day later Stripe has forgotten the key: resending would charge again.
    clock.advance(hours=25)
    sandbox.control.advance_clock(25 * 3600)

    outcome = charge_off_session(runtime, request, fast)
    assert outcome.status == status and not outcome.resumed
    [attempt] = sandbox.control.charges_for(idempotency_key="charge:stale")
    assert outcome.payment_intent_id == attempt.payment_intent
    assert charge_row(runtime.sessions, "stale").attempt_count == 1  # found, not resent
    if status == "failed":
        [case] = cases(runtime.sessions)
        assert (case.payment_intent_id, case.kind) == (
            attempt.payment_intent,
            "payment_method_required",
        )
        assert case.last_charge_id == attempt.charge_id


def test_a_charge_pending_past_the_key_window_that_never_reached_stripe_is_sent(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, clock: Any
) -> None:
    customer, method = sandbox.saved_card("never-sent@example.com", "pm_card_visa")
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="lost")
    sandbox.control.inject_errors(1.0)  # refused before anything ran
    with pytest.raises(ChargeUnresolved):
        charge_off_session(runtime, request, NO_RETRY)
    sandbox.control.inject_errors(0.0)
    assert attempts_for(sandbox, "lost") == 0
    clock.advance(hours=30)
    sandbox.control.advance_clock(30 * 3600)

    outcome = charge_off_session(runtime, request, fast)
    assert outcome.status == "succeeded"
    assert attempts_for(sandbox, "lost") == 1
