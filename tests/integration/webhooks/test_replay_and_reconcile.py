"""`replay` re-applies stored events; `reconcile` recovers events the sandbox never delivered."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.method_details import MethodDetailsWorker, complete_missing_details
from processor.clock import utc_now
from processor.config import Settings
from processor.db.models import (
    Notification,
    PaymentMethod,
    RecoveryCase,
    SetupAttempt,
    StripeEvent,
)
from processor.errors import NotFound, PayloadInvalid
from processor.runtime import Runtime, build_runtime
from processor.webhooks.apply import Outcome
from processor.webhooks.envelope import Event
from processor.webhooks.reconcile import reconcile, retention_warnings
from processor.webhooks.reducers import REDUCERS, on_payment_intent_payment_failed
from processor.webhooks.replay import replay_event, replay_failed
from tests.fixtures.database import FakeClock
from tests.fixtures.events import CREATED, decline, payment_intent, stripe_event
from tests.fixtures.sandbox import SandboxHandle
from tests.integration.webhooks.conftest import Deliver

One = Callable[..., Any]
MakeRuntime = Callable[..., Runtime]


def failed(intent_id: str, charge: str, created: int = CREATED) -> dict[str, Any]:
    error = decline("card_declined", "insufficient_funds", charge=charge)
    intent = payment_intent(
        intent_id, status="requires_payment_method", last_payment_error=error, latest_charge=charge
    )
    return stripe_event("payment_intent.payment_failed", intent, created=created)


class Broken:
    def __call__(self, event: Event) -> tuple[Any, ...]:
        on_payment_intent_payment_failed(event)
        raise RuntimeError("bug in a handler")


# -- replay ----------------------------------------------------------------------------------


def test_replaying_failed_events_applies_them_once_and_is_safe_to_repeat(
    deliver: Deliver,
    sessions: sessionmaker[Session],
    clock: FakeClock,
    one: One,
    monkeypatch: pytest.MonkeyPatch,
    make_runtime: MakeRuntime,
) -> None:
    with monkeypatch.context() as patch:
        patch.setitem(REDUCERS, "payment_intent.payment_failed", Broken())
        assert deliver(failed("pi_r1", "ch_1", CREATED + 5)) is Outcome.FAILED
        assert deliver(failed("pi_r2", "ch_2", CREATED)) is Outcome.FAILED
    results = list(replay_failed(make_runtime()))
    assert [r.outcome for r in results] == [Outcome.REAPPLIED, Outcome.REAPPLIED]
    assert [r.event_id for r in results] == sorted(
        (r.event_id for r in results),
        key=lambda event_id: one(StripeEvent, id=event_id).stripe_created_at,
    )
    assert one(RecoveryCase, payment_intent_id="pi_r1").failure_count == 1
    assert list(replay_failed(make_runtime())) == []
    again = replay_event(make_runtime(), results[0].event_id)
    assert again.outcome is Outcome.DUPLICATE
    assert one(StripeEvent, id=results[0].event_id).attempt_count == 2


def test_a_replay_that_fails_again_keeps_the_event_failed_with_its_error(
    deliver: Deliver,
    sessions: sessionmaker[Session],
    clock: FakeClock,
    one: One,
    monkeypatch: pytest.MonkeyPatch,
    make_runtime: MakeRuntime,
) -> None:
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", Broken())
    document = failed("pi_r3", "ch_3")
    deliver(document)
    result = replay_event(make_runtime(), document["id"])
    assert (result.outcome, result.error) == (Outcome.FAILED, "RuntimeError: bug in a handler")
    row = one(StripeEvent, id=document["id"])
    assert (row.status, row.attempt_count) == ("failed", 2)


def test_forcing_a_processed_event_runs_its_handler_without_double_counting(
    deliver: Deliver,
    sessions: sessionmaker[Session],
    clock: FakeClock,
    one: One,
    make_runtime: MakeRuntime,
) -> None:
    document = failed("pi_r4", "ch_4")
    deliver(document)
    result = replay_event(make_runtime(), document["id"], force=True)
    assert result.outcome is Outcome.REAPPLIED
    assert one(RecoveryCase, payment_intent_id="pi_r4").failure_count == 1
    assert one(StripeEvent, id=document["id"]).attempt_count == 2


def test_replay_refuses_unknown_and_pruned_events(
    deliver: Deliver, sessions: sessionmaker[Session], clock: FakeClock, make_runtime: MakeRuntime
) -> None:
    with pytest.raises(NotFound):
        replay_event(make_runtime(), "evt_never_seen")
    document = failed("pi_r5", "ch_5")
    deliver(document)
    with sessions.begin() as session:
        session.execute(update(StripeEvent).values(payload=None))  # pruned before 0010
    with pytest.raises(PayloadInvalid, match="pruned"):
        replay_event(make_runtime(), document["id"])


# -- reconcile -------------------------------------------------------------------------------


def declined_off_session(sandbox: SandboxHandle) -> str:
    customer_id, method_id = sandbox.saved_card("jo@example.com", "pm_card_chargeCustomerFail")
    with pytest.raises(stripe.CardError) as declined:
        sandbox.client.v1.payment_intents.create(
            {
                "amount": 1500,
                "currency": "eur",
                "customer": customer_id,
                "payment_method": method_id,
                "off_session": True,
                "confirm": True,
                "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            }
        )
    assert declined.value.error is not None and declined.value.error.payment_intent is not None
    return str(declined.value.error.payment_intent.id)


def test_reconcile_records_events_that_were_never_delivered(
    sandbox: SandboxHandle, sessions: sessionmaker[Session], one: One, make_runtime: MakeRuntime
) -> None:
    intent_id = declined_off_session(sandbox)
    report = reconcile(
        make_runtime(stripe_client=sandbox.client, clock=utc_now), since=timedelta(days=2)
    )
    assert report.warnings == []
    assert report.outcomes[Outcome.PROCESSED] >= 3
    assert report.outcomes[Outcome.FAILED] == report.outcomes[Outcome.UNAVAILABLE] == 0
    case = one(RecoveryCase, payment_intent_id=intent_id)
    assert (case.kind, case.status, case.amount, case.currency) == (
        "payment_method_required",
        "open",
        1500,
        "eur",
    )
    assert one(Notification, case_id=case.id).status == "pending"
    with sessions() as session:
        attempt = session.scalars(select(SetupAttempt)).one()
        method = session.get(PaymentMethod, attempt.payment_method_id)
        sources = set(session.scalars(select(StripeEvent.source)))
    assert attempt.status == "succeeded"
    assert method is not None and method.card_last4 == "0341"
    assert sources == {"reconcile"}

    second = reconcile(
        make_runtime(stripe_client=sandbox.client, clock=utc_now), since=timedelta(days=2)
    )
    assert second.outcomes == {}
    assert second.already_stored == report.listed
    assert one(RecoveryCase, payment_intent_id=intent_id).failure_count == 1


def test_reconcile_skips_what_the_webhook_already_stored(
    sandbox: SandboxHandle,
    sessions: sessionmaker[Session],
    deliver: Deliver,
    make_runtime: MakeRuntime,
) -> None:
    declined_off_session(sandbox)
    delivered = sandbox.client.v1.events.list({"type": "payment_intent.payment_failed"}).data[0]
    assert deliver(delivered.to_dict()) is Outcome.PROCESSED
    report = reconcile(
        make_runtime(stripe_client=sandbox.client, clock=utc_now), since=timedelta(hours=1)
    )
    assert report.already_stored == 1
    assert report.outcomes[Outcome.PROCESSED] == report.listed - 1


@pytest.mark.parametrize(
    ("since", "window", "warning"),
    [
        (timedelta(days=2), timedelta(days=2), None),
        (timedelta(days=28), timedelta(days=28), "may already be gone"),
        (timedelta(days=45), timedelta(days=30), "looking back 30 days instead of 45"),
    ],
)
def test_reconcile_warns_near_and_past_stripes_30_day_retention(
    since: timedelta, window: timedelta, warning: str | None
) -> None:
    asked, warnings = retention_warnings(since)
    assert asked == window
    assert (warning is None and warnings == []) or (warning is not None and warning in warnings[0])


def test_methods_missing_their_details_are_completed_from_stripe(
    sandbox: SandboxHandle,
    sessions: sessionmaker[Session],
    deliver: Deliver,
    one: One,
    clock: FakeClock,
) -> None:
    sandbox.saved_card("ann@example.com", "pm_card_mastercard")
    succeeded = sandbox.client.v1.events.list({"type": "setup_intent.succeeded"}).data[0]
    deliver(succeeded.to_dict())
    method_id = succeeded.data.object["payment_method"]
    with sessions.begin() as session:
        session.add(
            PaymentMethod(
                id="pm_deleted_at_stripe", status="active", created_at=clock(), updated_at=clock()
            )
        )
    assert one(PaymentMethod, id=method_id).type is None

    too_soon = complete_missing_details(sessions, sandbox.client, clock=clock)
    assert too_soon.completed == 0
    clock.advance(minutes=10)
    later = complete_missing_details(sessions, sandbox.client, clock=clock)
    assert (later.completed, later.gone, later.failed) == (1, 1, 0)
    method = one(PaymentMethod, id=method_id)
    assert (method.type, method.card_brand, method.card_last4) == ("card", "mastercard", "4444")
    assert method.details_updated_at == clock()
    assert complete_missing_details(sessions, sandbox.client, clock=clock).completed == 0


def test_the_background_worker_completes_methods_on_its_own(
    sandbox: SandboxHandle,
    engine: Engine,
    deliver: Deliver,
    one: One,
    clock: FakeClock,
    make_settings: Callable[..., Settings],
) -> None:
    sandbox.saved_card("bo@example.com", "pm_card_visa")
    succeeded = sandbox.client.v1.events.list({"type": "setup_intent.succeeded"}).data[0]
    deliver(succeeded.to_dict())
    method_id = succeeded.data.object["payment_method"]
    clock.advance(minutes=10)
    settings = make_settings()
    runtime = build_runtime(settings, engine=engine, stripe_client=sandbox.client, clock=clock)
    worker = MethodDetailsWorker(runtime, interval=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while one(PaymentMethod, id=method_id).type is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert one(PaymentMethod, id=method_id).card_last4 == "4242"
