"""Which saved method is charged: the named one, else the most recent usable one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from processor.charging import ChargeOptions, ChargeRequest, charge_off_session
from processor.db.models import PaymentMethod
from processor.errors import InvalidInput
from processor.runtime import Runtime
from tests.integration.charging.conftest import attempts_for


def remember(runtime: Runtime, method_id: str, customer: str, **values: Any) -> None:
    """A payment_methods row as the webhook receiver writes it."""
    now = runtime.clock()
    row = {
        "id": method_id,
        "customer_id": customer,
        "type": "card",
        "status": "active",
        "attached_at": now,
        "created_at": now,
        "updated_at": now,
    }
    row.update(values)
    with runtime.sessions.begin() as session:
        session.add(PaymentMethod(**row))


def add_method(sandbox: Any, customer: str, magic_id: str) -> str:
    return sandbox.client.v1.payment_methods.attach(magic_id, {"customer": customer}).id


def test_the_most_recently_saved_method_is_charged(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, older = sandbox.saved_card("two-cards@example.com", "pm_card_visa")
    newer = add_method(sandbox, customer, "pm_card_mastercard")
    now: datetime = runtime.clock()
    remember(runtime, older, customer, attached_at=now - timedelta(days=30))
    remember(runtime, newer, customer, attached_at=now - timedelta(days=1))
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert outcome.payment_method_id == newer


def test_our_order_wins_over_stripes(runtime: Runtime, sandbox: Any, fast: ChargeOptions) -> None:
    customer, first = sandbox.saved_card("order@example.com", "pm_card_visa")
    second = add_method(sandbox, customer, "pm_card_mastercard")
    now: datetime = runtime.clock()
    # Recorded the other way round (say, the second was re-saved long ago and re-attached).
    remember(runtime, first, customer, attached_at=now)
    remember(runtime, second, customer, attached_at=now - timedelta(days=90))
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert outcome.payment_method_id == first


def test_without_our_rows_stripes_newest_is_charged(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _first = sandbox.saved_card("no-rows@example.com", "pm_card_visa")
    newest = add_method(sandbox, customer, "pm_card_mastercard")
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert outcome.payment_method_id == newest


def test_detached_methods_are_skipped(runtime: Runtime, sandbox: Any, fast: ChargeOptions) -> None:
    customer, kept = sandbox.saved_card("detached@example.com", "pm_card_visa")
    detached_at_stripe = add_method(sandbox, customer, "pm_card_mastercard")
    detached_here = add_method(sandbox, customer, "pm_card_amex")
    sandbox.client.v1.payment_methods.detach(detached_at_stripe)
    now: datetime = runtime.clock()
    remember(runtime, kept, customer, attached_at=now - timedelta(days=10))
    remember(runtime, detached_at_stripe, customer, attached_at=now)
    # The webhook saw this one detached before Stripe's list caught up.
    remember(runtime, detached_here, customer, attached_at=now, status="detached")
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert outcome.payment_method_id == kept


def test_expired_cards_are_skipped_and_sepa_mandates_used(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, clock: Any
) -> None:
    customer, card = sandbox.saved_card("expired@example.com", "pm_card_visa")
    sepa = add_method(sandbox, customer, "pm_sepaDebit_success_de")
    now: datetime = runtime.clock()
    remember(runtime, card, customer, attached_at=now)
    remember(runtime, sepa, customer, type="sepa_debit", attached_at=now - timedelta(days=5))
    expiry = sandbox.client.v1.payment_methods.retrieve(card).card
    clock.now = datetime(expiry.exp_year + 1, 1, 15, tzinfo=now.tzinfo)  # the card has expired
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "eur", reference="r"), fast)
    assert (outcome.payment_method_id, outcome.status) == (sepa, "processing")


def test_a_customer_whose_only_card_expired_cannot_be_charged(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, clock: Any
) -> None:
    customer, card = sandbox.saved_card("only-expired@example.com", "pm_card_visa")
    expiry = sandbox.client.v1.payment_methods.retrieve(card).card
    clock.now = datetime(expiry.exp_year, expiry.exp_month, 1, tzinfo=clock.now.tzinfo)
    clock.advance(days=40)  # past the last day of the expiry month
    with pytest.raises(InvalidInput, match="no usable saved payment method"):
        charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert attempts_for(sandbox, "r") == 0


def test_a_card_is_good_through_its_expiry_month(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, clock: Any
) -> None:
    customer, card = sandbox.saved_card("last-month@example.com", "pm_card_visa")
    expiry = sandbox.client.v1.payment_methods.retrieve(card).card
    clock.now = datetime(expiry.exp_year, expiry.exp_month, 28, tzinfo=clock.now.tzinfo)
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="r"), fast)
    assert outcome.payment_method_id == card


def test_a_named_method_is_charged_without_listing(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, card = sandbox.saved_card("named@example.com", "pm_card_visa")
    newer = add_method(sandbox, customer, "pm_card_mastercard")
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=card, reference="r")
    outcome = charge_off_session(runtime, request, fast)
    assert outcome.payment_method_id == card != newer


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"status": "detached"}, "was detached"),
        ({"card_exp_year": 2020, "card_exp_month": 3}, "expired in 03/2020"),
        ({"customer_id": "cus_someone_else"}, "belongs to another customer"),
        ({"type": "us_bank_account"}, "cannot be charged off-session"),
    ],
)
def test_a_named_method_we_know_is_unusable_is_refused_before_stripe(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions, row: dict[str, Any], message: str
) -> None:
    customer, card = sandbox.saved_card("named-bad@example.com", "pm_card_visa")
    remember(runtime, card, row.pop("customer_id", customer), **row)
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=card, reference="r")
    with pytest.raises(InvalidInput, match=message):
        charge_off_session(runtime, request, fast)
    assert attempts_for(sandbox, "r") == 0


def test_a_named_method_of_another_customer_is_refused_by_stripe(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _card = sandbox.saved_card("me@example.com", "pm_card_visa")
    _other, theirs = sandbox.saved_card("them@example.com", "pm_card_visa")
    request = ChargeRequest(customer, 1999, "jpy", payment_method_id=theirs, reference="r")
    with pytest.raises(InvalidInput, match="Stripe refused the charge"):
        charge_off_session(runtime, request, fast)
    assert attempts_for(sandbox, "r") == 0


def test_a_method_ideal_generated_is_charged_as_sepa_debit(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    client = sandbox.client.v1
    customer = client.customers.create({"email": "ideal@example.com"}).id
    token = client.test_helpers.confirmation_tokens.create(
        {
            "payment_method_data": {
                "type": "ideal",
                "billing_details": {"name": "Ada", "email": "ideal@example.com"},
            }
        }
    )
    setup = client.setup_intents.create(
        {
            "customer": customer,
            "confirm": True,
            "confirmation_token": token.id,
            "return_url": "https://shop.example/return",
            "mandate_data": {"customer_acceptance": {"type": "offline", "accepted_at": 1}},
        }
    )
    sandbox.control.authenticate(setup.id, True)
    [generated] = client.customers.payment_methods.list(customer).data

    outcome = charge_off_session(
        runtime, ChargeRequest(customer, 1500, "eur", reference="ideal-1"), fast
    )

    assert (outcome.payment_method_id, outcome.status) == (generated.id, "processing")
    assert setup.payment_method != generated.id
