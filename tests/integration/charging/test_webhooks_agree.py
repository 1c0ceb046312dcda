"""The charger and the webhook receiver tell the same story, whichever speaks first.

The whole app runs over loopback in sandbox mode: the Stripe stand-in is mounted in it and
delivers signed webhooks to the app's own receiver, as `processor serve` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import select

from processor.charging import (
    ChargeOptions,
    ChargeRequest,
    ChargeUnresolved,
    RetryPolicy,
    charge_off_session,
)
from processor.db.models import Notification, RecoveryCase, StripeEvent
from tests.fixtures.app import LiveApp
from tests.integration.charging.conftest import FAST_RETRY, cases, charge_row
from tests.sandbox.flows import bank_setup

FAST = ChargeOptions(retry=FAST_RETRY)
DECLINES = [
    ("pm_card_authenticationRequired", "authentication_required"),
    ("pm_card_authenticationRequiredChargeDeclinedInsufficientFunds", "payment_method_required"),
    ("pm_card_chargeCustomerFail", "payment_method_required"),
]


@pytest.fixture
def app(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app()


handle = LiveApp.stand_in


def failure_events(app: LiveApp, intent_id: str) -> list[StripeEvent]:
    with app.runtime.sessions() as session:
        return list(
            session.scalars(
                select(StripeEvent).where(
                    StripeEvent.object_id == intent_id,
                    StripeEvent.type == "payment_intent.payment_failed",
                )
            )
        )


@pytest.mark.parametrize(("card", "kind"), DECLINES)
def test_the_402_opens_the_case_and_the_later_webhook_agrees(
    app: LiveApp, card: str, kind: str
) -> None:
    stand_in = handle(app)
    customer, _method = stand_in.saved_card("first@example.com", card)
    stand_in.control.pause_webhooks()
    outcome = charge_off_session(
        app.runtime, ChargeRequest(customer, 1999, "jpy", reference="r402"), FAST
    )
    [opened] = cases(app.runtime.sessions)
    assert (opened.kind, outcome.recovery_kind) == (kind, kind)

    stand_in.control.resume_webhooks()
    stand_in.control.wait_for_deliveries()
    [event] = failure_events(app, outcome.payment_intent_id or "")
    assert event.status == "processed"
    [after] = cases(app.runtime.sessions)
    assert (after.id, after.kind, after.failure_count) == (opened.id, kind, 1)
    assert (after.error_code, after.decline_code) == (outcome.error_code, outcome.decline_code)
    row = charge_row(app.runtime.sessions, "r402")
    assert (row.status, row.error_code, row.decline_code) == (
        "failed",
        outcome.error_code,
        outcome.decline_code,
    )


@pytest.mark.parametrize(("card", "kind"), DECLINES)
def test_when_the_webhook_comes_first_the_charger_changes_nothing(
    app: LiveApp, card: str, kind: str
) -> None:
    stand_in = handle(app)
    customer, method = stand_in.saved_card("second@example.com", card)
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=method, reference="rwh")
    # The card is declined but our answer is lost and nobody retries: the row stays pending.
    once = replace(app.runtime, stripe=stand_in.new_client(max_network_retries=0))
    stand_in.control.inject_errors(1.0, after_execution=True)
    with pytest.raises(ChargeUnresolved):
        charge_off_session(once, request, ChargeOptions(retry=RetryPolicy(attempts=1)))
    stand_in.control.inject_errors(0.0)
    stand_in.control.wait_for_deliveries()

    # The webhook found the row by the reference in the intent's metadata and opened the case.
    row = charge_row(app.runtime.sessions, "rwh")
    assert row.status == "failed" and row.payment_intent_id is not None
    [opened] = cases(app.runtime.sessions)
    assert (opened.kind, opened.failure_count) == (kind, 1)

    outcome = charge_off_session(app.runtime, request, FAST)
    assert outcome.resumed and outcome.recovery_kind == kind
    assert outcome.payment_intent_id == opened.payment_intent_id
    [after] = cases(app.runtime.sessions)
    assert (after.kind, after.failure_count, after.updated_at) == (
        kind,
        1,
        opened.updated_at,
    )
    assert len(stand_in.control.charges_for(idempotency_key="charge:rwh")) == 1


def test_a_sepa_debit_processes_then_fails_by_webhook_and_opens_a_case(app: LiveApp) -> None:
    stand_in = handle(app)
    stand_in.control.set_sepa_settlement_delay(None)  # settle only when the test says so
    customer, method = stand_in.saved_card("sepa@example.com", "pm_sepaDebit_failed_de")
    request = ChargeRequest(customer, 2500, "eur", reference="sepa-1")
    outcome = charge_off_session(app.runtime, request, FAST)
    assert (outcome.status, outcome.category, outcome.payment_method_id) == (
        "processing",
        "processing",
        method,
    )
    stand_in.control.wait_for_deliveries()
    assert cases(app.runtime.sessions) == []

    assert stand_in.control.settle_processing() == [outcome.payment_intent_id]
    stand_in.control.wait_for_deliveries()

    row = charge_row(app.runtime.sessions, "sepa-1")
    assert row.status == "failed" and row.error_code is not None
    [opened] = cases(app.runtime.sessions)
    assert (opened.payment_intent_id, opened.kind, opened.status) == (
        outcome.payment_intent_id,
        "payment_method_required",
        "open",
    )
    assert (opened.amount, opened.currency, opened.customer_id) == (2500, "eur", customer)

    again = charge_off_session(app.runtime, request, FAST)
    assert again.resumed and again.category == "needs_new_method"
    assert len(stand_in.control.charges_for(idempotency_key="charge:sepa-1")) == 1


def test_a_sepa_debit_that_settles_marks_the_charge_succeeded(app: LiveApp) -> None:
    stand_in = handle(app)
    stand_in.control.set_sepa_settlement_delay(None)
    customer, _method = stand_in.saved_card("sepa-ok@example.com", "pm_sepaDebit_success_de")
    outcome = charge_off_session(
        app.runtime, ChargeRequest(customer, 2500, "eur", reference="sepa-2"), FAST
    )
    assert outcome.status == "processing"
    stand_in.control.settle_processing()
    stand_in.control.wait_for_deliveries()
    assert charge_row(app.runtime.sessions, "sepa-2").status == "succeeded"
    with app.runtime.sessions() as session:
        assert session.scalars(select(RecoveryCase)).all() == []


def test_a_debit_from_ideal_emails_only_once_it_has_failed(app: LiveApp) -> None:
    stand_in = handle(app)
    stand_in.control.set_sepa_settlement_delay(None)
    customer, setup = bank_setup(stand_in, "ideal", "ada_generatedSepaDebitIntentsFail@example.com")
    stand_in.control.authenticate(setup.id, True)
    request = ChargeRequest(customer, 1200, "eur", reference="ideal-sepa")

    outcome = charge_off_session(app.runtime, request, FAST)
    stand_in.control.wait_for_deliveries()

    assert outcome.status == "processing"
    assert charge_row(app.runtime.sessions, "ideal-sepa").status == "processing"
    assert cases(app.runtime.sessions) == [] and notifications(app) == []

    stand_in.control.settle_processing()
    stand_in.control.wait_for_deliveries()

    assert charge_row(app.runtime.sessions, "ideal-sepa").status == "failed"
    [opened] = cases(app.runtime.sessions)
    assert (opened.kind, opened.payment_method_id) == (
        "payment_method_required",
        outcome.payment_method_id,
    )
    [queued] = notifications(app)
    assert queued.case_id == opened.id


def notifications(app: LiveApp) -> list[Notification]:
    with app.runtime.sessions() as session:
        return list(session.scalars(select(Notification)))


def test_the_in_app_sandbox_settles_at_once_when_told(live_app: Callable[..., LiveApp]) -> None:
    app = live_app(sandbox_sepa_settlement_seconds=0)
    stand_in = handle(app)
    customer, _method = stand_in.saved_card("now@example.com", "pm_sepaDebit_success_de")

    outcome = charge_off_session(
        app.runtime, ChargeRequest(customer, 900, "eur", reference="sepa-now"), FAST
    )

    assert outcome.status == "processing"
    deadline = time.monotonic() + 5
    while charge_row(app.runtime.sessions, "sepa-now").status == "processing":
        assert time.monotonic() < deadline, "the debit never settled"
        stand_in.control.wait_for_deliveries()
        time.sleep(0.05)
    assert charge_row(app.runtime.sessions, "sepa-now").status == "succeeded"
