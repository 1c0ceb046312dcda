"""The charger's 402 and its `payment_intent.payment_failed` webhook, recorded at the same time.

Both take the PaymentIntent's lock before the `charges` row, so on PostgreSQL neither can wait
for the other in a cycle (a deadlock would surface here as an error from the charger or as a
failed event). Webhooks flow freely, so they land while the charger is storing its answer.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from processor.charging import ChargeOptions, ChargeRequest, charge_off_session
from processor.db.models import RecoveryCase, StripeEvent
from tests.fixtures.app import LiveApp
from tests.integration.charging.conftest import FAST_RETRY
from tests.integration.charging.test_webhooks_agree import handle

ROUNDS = 12


def test_declines_recorded_while_their_webhooks_arrive(live_app: Callable[..., LiveApp]) -> None:
    app = live_app()
    stand_in = handle(app)
    customer, method = stand_in.saved_card("race@example.com", "pm_card_chargeCustomerFail")
    stand_in.control.wait_for_deliveries()
    intents = []
    for round_number in range(ROUNDS):
        outcome = charge_off_session(
            app.runtime,
            ChargeRequest(customer, 1999, "usd", payment_method_id=method, reference=f"race-{round_number}"),
            ChargeOptions(retry=FAST_RETRY),
        )
        assert outcome.recovery_kind == "payment_method_required"
        intents.append(outcome.payment_intent_id)
    stand_in.control.wait_for_deliveries()
    with app.runtime.sessions() as session:
        cases = session.scalars(select(RecoveryCase)).all()
        failed_events = session.scalars(
            select(StripeEvent.id).where(StripeEvent.status == "failed")
        ).all()
    assert sorted(c.payment_intent_id for c in cases) == sorted(intents)
    assert all(c.failure_count == 1 and c.status == "open" for c in cases)
    assert failed_events == []
