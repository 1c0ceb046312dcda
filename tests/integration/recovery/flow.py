"""A failed off-session charge in the app's own sandbox, as it happens in production: a saved
card, the charger's 402, the webhooks, and the recovery case they open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from processor.charging import ChargeOptions, ChargeRequest, RetryPolicy, charge_off_session
from processor.db.engine import unit_of_work
from processor.db.models import Customer, RecoveryCase
from processor.recovery.links import issue_link
from tests.fixtures.app import LiveApp

FAST = ChargeOptions(retry=RetryPolicy(attempts=4, base_delay=0.02, max_delay=0.2))


@dataclass(frozen=True)
class OpenCase:
    id: int
    kind: str
    customer_id: str
    payment_method_id: str
    payment_intent_id: str


stand_in = LiveApp.stand_in


def failed_charge(
    app: LiveApp,
    card: str,
    *,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    locale: str = "en",
    amount: int = 1999,
    currency: str = "usd",
    reference: str = "order-1",
) -> OpenCase:
    """A customer who saved `card`, charged off-session and declined: the case is open."""
    sandbox = stand_in(app)
    customer_id, method_id = sandbox.saved_card(email, card)
    now = app.runtime.clock()
    with unit_of_work(app.runtime.sessions) as session:
        session.add(
            Customer(
                id=customer_id,
                email=email,
                name=name,
                preferred_locale=locale,
                created_at=now,
                updated_at=now,
            )
        )
    assert sandbox.control.wait_for_deliveries(10)
    # The charger records the 402 before the webhook arrives (the usual order, and the one
    # that keeps the two writers from meeting in the same rows at once).
    sandbox.control.pause_webhooks()
    try:
        outcome = charge_off_session(
            app.runtime,
            ChargeRequest(
                customer_id, amount, currency, reference=reference, payment_method_id=method_id
            ),
            FAST,
        )
    finally:
        sandbox.control.resume_webhooks()
    assert outcome.recovery_kind is not None, outcome
    assert sandbox.control.wait_for_deliveries(10)
    with app.runtime.sessions() as session:
        case = session.scalars(
            select(RecoveryCase).where(RecoveryCase.payment_intent_id == outcome.payment_intent_id)
        ).one()
    assert case.status == "open"
    return OpenCase(case.id, case.kind, customer_id, method_id, case.payment_intent_id)


def link_token(app: LiveApp, case_id: int, *, age: timedelta = timedelta(0)) -> str:
    """A link for the case as the notifier would write it, issued `age` ago."""
    settings = app.settings
    return issue_link(
        secret_key=settings.secret_key,
        public_base_url=settings.public_base_url,
        case_id=case_id,
        ttl=settings.recovery_link_ttl,
        clock=lambda: app.runtime.clock() - age,
    ).token


def case_status(app: LiveApp, case_id: int) -> str:
    with app.runtime.sessions() as session:
        return session.scalars(select(RecoveryCase.status).where(RecoveryCase.id == case_id)).one()
