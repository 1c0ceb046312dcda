"""End to end: the sandbox's webhook sender delivers to the app's receiver over loopback.

The app runs in sandbox mode (`live_app`), with the Stripe stand-in mounted in it, as
`processor serve` runs: every event the stand-in emits is signed and POSTed to
/webhooks/stripe, retried on any non-2xx, duplicated or shuffled on demand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from sqlalchemy import select

from processor.db.models import (
    Notification,
    PaymentMethod,
    RecoveryCase,
    SetupAttempt,
    StripeEvent,
)
from processor.webhooks.envelope import Event
from processor.webhooks.reducers import REDUCERS, on_payment_intent_payment_failed
from tests.fixtures.app import LiveApp
from tests.fixtures.sandbox import SandboxHandle

NEW = "whsec_e2e_new_secret"
OLD = "whsec_e2e_old_secret"


stand_in = LiveApp.stand_in


def decline_off_session(handle: SandboxHandle, card: str) -> tuple[str, str]:
    customer, method = handle.saved_card(f"{card}@example.com", card)
    with pytest.raises(stripe.CardError) as declined:
        handle.client.v1.payment_intents.create({
            "amount": 4200, "currency": "jpy", "customer": customer, "payment_method": method,
            "off_session": True, "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        })
    assert declined.value.error is not None and declined.value.error.payment_intent is not None
    return customer, str(declined.value.error.payment_intent.id)


def rows(app: LiveApp, model: type[Any]) -> list[Any]:
    with app.runtime.sessions() as session:
        return list(session.scalars(select(model)))


def every_delivery_acknowledged(handle: SandboxHandle) -> bool:
    handle.control.wait_for_deliveries(timeout=15)
    return all(d.succeeded for d in handle.control.deliveries)


def test_saving_a_card_with_3ds_is_recorded_from_the_webhooks(
    live_app: Callable[..., LiveApp],
) -> None:
    app = live_app(stripe_webhook_secrets=(NEW, OLD))
    handle = stand_in(app)
    customer, method_id = handle.saved_card("ann@example.com", "pm_card_authenticationRequiredOnSetup")
    assert every_delivery_acknowledged(handle)
    [attempt] = rows(app, SetupAttempt)
    assert (attempt.status, attempt.customer_id, attempt.payment_method_id) == (
        "succeeded", customer, method_id,
    )
    with app.runtime.sessions() as session:
        method = session.get(PaymentMethod, method_id)
        assert method is not None
        assert (method.type, method.card_last4, method.status) == ("card", "3155", "active")
        secrets_used = set(session.scalars(select(StripeEvent.secret_index)))
    assert secrets_used == {0}


def test_a_declined_charge_opens_a_case_and_paying_later_closes_it(
    live_app: Callable[..., LiveApp],
) -> None:
    app = live_app()
    handle = stand_in(app)
    _customer, intent_id = decline_off_session(handle, "pm_card_chargeCustomerFail")
    assert every_delivery_acknowledged(handle)
    [case] = rows(app, RecoveryCase)
    assert (case.payment_intent_id, case.kind, case.status, case.amount, case.currency) == (
        intent_id, "payment_method_required", "open", 4200, "jpy",
    )
    [email] = rows(app, Notification)
    assert email.status == "pending"

    handle.client.v1.payment_intents.confirm(intent_id, {"payment_method": "pm_card_visa"})
    assert every_delivery_acknowledged(handle)
    [case] = rows(app, RecoveryCase)
    assert case.status == "recovered" and case.resolved_at is not None
    assert [n.status for n in rows(app, Notification)] == ["canceled"]


def _state(app: LiveApp) -> tuple[Any, ...]:
    with app.runtime.sessions() as session:
        cases = sorted((c.kind, c.status, c.failure_count, c.amount)
                       for c in session.scalars(select(RecoveryCase)))
        methods = sorted((m.type, m.card_last4, m.status)
                         for m in session.scalars(select(PaymentMethod)))
        attempts = sorted(a.status for a in session.scalars(select(SetupAttempt)))
        emails = sorted(n.status for n in session.scalars(select(Notification)))
        events = session.scalars(select(StripeEvent)).all()
    return cases, methods, attempts, emails, sorted(e.status for e in events)


def _story(handle: SandboxHandle) -> None:
    handle.saved_card("cy@example.com", "pm_card_visa")
    decline_off_session(handle, "pm_card_authenticationRequired")
    _customer, recovered = decline_off_session(handle, "pm_card_chargeCustomerFail")
    handle.client.v1.payment_intents.confirm(recovered, {"payment_method": "pm_card_visa"})


def test_duplicated_and_shuffled_deliveries_end_in_the_same_state(
    live_app: Callable[..., LiveApp],
) -> None:
    calm = live_app()
    _story(stand_in(calm))
    assert every_delivery_acknowledged(stand_in(calm))
    expected = _state(calm)
    calm.stop()
    with calm.runtime.engine.begin() as connection:
        for model in (Notification, RecoveryCase, PaymentMethod, SetupAttempt, StripeEvent):
            connection.execute(model.__table__.delete())

    chaotic = live_app()
    handle = stand_in(chaotic)
    handle.control.set_webhook_chaos(duplicate_share=0.5, shuffle=True)
    _story(handle)
    assert every_delivery_acknowledged(handle)
    assert _state(chaotic) == expected
    assert expected[0] == [
        ("authentication_required", "open", 1, 4200),
        ("payment_method_required", "recovered", 1, 4200),
    ]
    with chaotic.runtime.sessions() as session:
        assert max(session.scalars(select(StripeEvent.delivery_count))) > 1


class FailsUntilFixed:
    """Reduces the event as the real reducer does, but raises until the test fixes it."""

    def __init__(self) -> None:
        self.fixed = False

    def __call__(self, event: Event) -> tuple[Any, ...]:
        changes = on_payment_intent_payment_failed(event)
        if not self.fixed:
            raise RuntimeError(self.message)
        return changes

    message = "renderer crashed"


def test_a_500_makes_the_sender_retry_and_the_retry_applies_the_event(
    live_app: Callable[..., LiveApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = FailsUntilFixed()
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", handler)
    app = live_app()
    handle = stand_in(app)
    _customer, intent_id = decline_off_session(handle, "pm_card_chargeCustomerFail")
    deadline = time.monotonic() + 10
    while not any(d.status_code == 500 for d in handle.control.deliveries):
        assert time.monotonic() < deadline, "the failing delivery never happened"
        time.sleep(0.02)
    handler.fixed = True
    handle.control.wait_for_deliveries(timeout=15)
    attempts = [d for d in handle.control.deliveries if d.type == "payment_intent.payment_failed"]
    assert attempts[0].status_code == 500 and attempts[-1].status_code == 200
    assert {d.status_code for d in attempts[:-1]} == {500}
    with app.runtime.sessions() as session:
        event = session.scalars(
            select(StripeEvent).where(StripeEvent.type == "payment_intent.payment_failed")
        ).one()
        assert (event.status, event.delivery_count) == ("processed", len(attempts))
        assert session.scalars(select(RecoveryCase)).one().payment_intent_id == intent_id
