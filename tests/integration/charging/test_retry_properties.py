"""Whatever happens in whatever order (declines, retries, webhooks, page payments, reruns and
killed workers), a reference is charged at most once and a never-retry decline is not retried."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta
from typing import Any

import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from processor.charging import ChargeOptions, ChargeRequest, charge_off_session
from processor.charging.decline_policy import DeclineAction, classify_decline
from processor.charging.retrier import Retrier, RetrierOptions
from processor.db.models import ChargeRetry, RecoveryCase
from processor.runtime import Runtime
from processor.webhooks.reconcile import reconcile
from tests.integration.charging.conftest import FAST_RETRY, charge_row

CARDS = (
    "pm_card_sandbox_insufficientFundsThenSucceeds",
    "pm_card_sandbox_chargeDeclinedDoNotTryAgain",
    "pm_card_chargeCustomerFail",
    "pm_card_authenticationRequired",
)
ACTIONS = ("day", "lease", "retry", "webhooks", "rerun", "page", "kill")
_references = itertools.count()


class _Killed(BaseException):
    """A worker killed after Stripe answered, before anything was recorded."""


class _DiesAfterSending(Retrier):
    def _recovered(self, retry: Any, intent: Any) -> str:
        raise _Killed

    def _declined(self, retry: Any, error: Any, decline: Any, message: Any) -> str:
        raise _Killed


def _step(action: str, runtime: Runtime, sandbox: Any, clock: Any, request: ChargeRequest) -> None:
    options = ChargeOptions(retry=FAST_RETRY)
    if action == "day":
        clock.advance(days=1)
    elif action == "lease":
        clock.advance(seconds=RetrierOptions().lease.total_seconds() + 1)
    elif action == "retry":
        Retrier(runtime, charge_options=options, worker_id="live").run_once()
    elif action == "kill":
        with contextlib.suppress(_Killed):
            _DiesAfterSending(runtime, charge_options=options, worker_id="doomed").run_once()
    elif action == "webhooks":
        reconcile(runtime, since=timedelta(days=30))
    elif action == "rerun":
        charge_off_session(runtime, request, options)
    elif action == "page":
        intent = charge_row(runtime.sessions, request.reference or "").payment_intent_id
        # The recovery page: the customer confirms the same PaymentIntent with a new card;
        # Stripe refuses it if a retry paid first.
        with contextlib.suppress(stripe.StripeError):
            sandbox.client.v1.payment_intents.confirm(
                intent, {"payment_method": "pm_card_visa", "return_url": "http://127.0.0.1/"}
            )


def _check(runtime: Runtime, sandbox: Any, reference: str, card: str) -> None:
    row = charge_row(runtime.sessions, reference)
    attempts = sandbox.control.charges_for(payment_intent=row.payment_intent_id)
    assert len([a for a in attempts if a.status == "succeeded"]) <= 1
    assert len(sandbox.control.charges_for(idempotency_key=f"charge:{reference}")) == 1
    with runtime.sessions() as session:
        case_id = session.scalar(
            select(RecoveryCase.id).where(RecoveryCase.payment_intent_id == row.payment_intent_id)
        )
        retries = list(
            session.scalars(
                select(ChargeRetry)
                .where(ChargeRetry.case_id == case_id)
                .order_by(ChargeRetry.attempt)
            )
        )
    assert len(retries) <= len(runtime.settings.retry_schedule)
    for retry in retries:
        sent = sandbox.control.charges_for(idempotency_key=retry.idempotency_key)
        assert len(sent) <= 1
    for earlier, later in itertools.pairwise(retries):
        assert earlier.status == "failed"
        verdict = classify_decline(
            earlier.error_code,
            earlier.decline_code,
            earlier.advice_code,
            earlier.network_advice_code,
            earlier.network_decline_code,
        )
        assert verdict is DeclineAction.RETRY, (earlier.decline_code, later.attempt)
    if card != CARDS[0] and card != CARDS[2]:  # never-retry and authentication declines
        assert retries == []
        assert not [a for a in attempts if a.idempotency_key and ":retry:" in a.idempotency_key]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(card=st.sampled_from(CARDS), actions=st.lists(st.sampled_from(ACTIONS), max_size=10))
def test_no_sequence_charges_twice_or_retries_what_must_not_be(
    runtime: Runtime, sandbox: Any, clock: Any, card: str, actions: list[str]
) -> None:
    reference = f"P{next(_references)}"
    customer, _method = sandbox.saved_card(f"{reference}@example.com", card)
    request = ChargeRequest(customer, 1999, "usd", reference=reference)
    assert charge_off_session(runtime, request, ChargeOptions(retry=FAST_RETRY)).status == "failed"

    for action in actions:
        _step(action, runtime, sandbox, clock, request)
        _check(runtime, sandbox, reference, card)
