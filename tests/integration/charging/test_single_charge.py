"""One off-session charge against the sandbox: each test card's outcome, reruns, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from processor.charging import (
    ChargeOptions,
    ChargeRefused,
    ChargeRequest,
    charge_off_session,
)
from processor.db.models import Charge, Notification
from processor.errors import InvalidInput, NotFound
from processor.runtime import Runtime
from tests.integration.charging.conftest import attempts_for, cases, charge_row


@pytest.mark.parametrize(
    ("card", "status", "codes", "kind"),
    [
        ("pm_card_visa", "succeeded", (None, None), None),
        ("pm_card_mastercard", "succeeded", (None, None), None),
        ("pm_card_authenticationRequiredOnSetup", "succeeded", (None, None), None),
        (
            "pm_card_authenticationRequired",
            "failed",
            ("authentication_required", "authentication_required"),
            "authentication_required",
        ),
        (
            "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds",
            "failed",
            ("card_declined", "insufficient_funds"),
            "payment_method_required",
        ),
        (
            "pm_card_chargeCustomerFail",
            "failed",
            ("card_declined", "generic_decline"),
            "payment_method_required",
        ),
    ],
)
def test_each_test_card_ends_where_stripe_says(
    runtime: Runtime,
    sandbox: Any,
    fast: ChargeOptions,
    card: str,
    status: str,
    codes: tuple[str | None, str | None],
    kind: str | None,
) -> None:
    customer, method = sandbox.saved_card(f"{card}@example.com", card)
    outcome = charge_off_session(
        runtime, ChargeRequest(customer, 1999, "jpy", reference=f"ref-{card}"), fast
    )

    assert (outcome.status, outcome.error_code, outcome.decline_code) == (status, *codes)
    assert outcome.recovery_kind == kind
    assert outcome.payment_method_id == method
    assert outcome.payment_intent_id is not None and outcome.payment_intent_id.startswith("pi_")
    row = charge_row(runtime.sessions, f"ref-{card}")
    assert (row.status, row.error_code, row.decline_code) == (status, *codes)
    assert row.idempotency_key == f"charge:ref-{card}"
    assert row.payment_intent_id == outcome.payment_intent_id
    assert row.attempt_count == 1 and row.completed_at == runtime.clock()
    assert attempts_for(sandbox, f"ref-{card}") == 1

    intent = sandbox.client.v1.payment_intents.retrieve(outcome.payment_intent_id)
    assert intent.metadata["reference"] == f"ref-{card}"
    assert intent.customer == customer and intent.amount == 1999 and intent.currency == "jpy"

    opened = cases(runtime.sessions)
    if kind is None:
        assert opened == []
    else:
        # The 402 opened the case at once, with the first email queued.
        [case] = opened
        assert (case.payment_intent_id, case.kind, case.status) == (
            outcome.payment_intent_id,
            kind,
            "open",
        )
        assert (case.customer_id, case.payment_method_id) == (customer, method)
        assert (case.amount, case.currency, case.failure_count) == (1999, "jpy", 1)
        assert (case.error_code, case.decline_code) == codes
        assert case.last_charge_id is not None and case.last_charge_id.startswith("ch_")
        with runtime.sessions() as session:
            emails = session.scalars(select(Notification).where(Notification.case_id == case.id))
            assert [email.kind for email in emails] == ["initial"]


def test_the_request_carries_what_stripe_needs(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, method = sandbox.saved_card("params@example.com", "pm_card_visa")
    outcome = charge_off_session(
        runtime,
        ChargeRequest(customer, 2500, "usd", reference="inv-42", description="November plan"),
        fast,
    )
    intent = sandbox.client.v1.payment_intents.retrieve(outcome.payment_intent_id)
    assert intent.payment_method == method
    assert intent.description == "November plan"
    assert intent.automatic_payment_methods.enabled is True
    assert intent.status == "succeeded"


def test_rerunning_a_reference_never_charges_again(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _method = sandbox.saved_card("again@example.com", "pm_card_visa")
    request = ChargeRequest(customer, 1999, "jpy", reference="once-only")
    first = charge_off_session(runtime, request, fast)
    second = charge_off_session(runtime, request, fast)

    assert first.status == second.status == "succeeded"
    assert second.payment_intent_id == first.payment_intent_id
    assert (first.resumed, second.resumed) == (False, True)
    assert attempts_for(sandbox, "once-only") == 1
    assert charge_row(runtime.sessions, "once-only").attempt_count == 1


def test_rerunning_a_declined_reference_keeps_one_case(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _method = sandbox.saved_card("declined@example.com", "pm_card_chargeCustomerFail")
    request = ChargeRequest(customer, 1999, "jpy", reference="declined-once")
    first = charge_off_session(runtime, request, fast)
    second = charge_off_session(runtime, request, fast)
    assert first.category == second.category == "needs_new_method"
    assert second.resumed
    [case] = cases(runtime.sessions)
    assert case.failure_count == 1
    assert attempts_for(sandbox, "declined-once") == 1


def test_a_reference_cannot_be_reused_for_another_charge(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _method = sandbox.saved_card("reuse@example.com", "pm_card_visa")
    charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="inv-7"), fast)
    with pytest.raises(ChargeRefused, match="already used for a different charge") as caught:
        charge_off_session(runtime, ChargeRequest(customer, 2999, "jpy", reference="inv-7"), fast)
    assert caught.value.code == "reference_conflict"
    assert attempts_for(sandbox, "inv-7") == 1
    assert charge_row(runtime.sessions, "inv-7").amount == 1999


def test_a_generated_reference_is_stored_before_the_request(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _method = sandbox.saved_card("generated@example.com", "pm_card_visa")
    outcome = charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy"), fast)
    assert outcome.reference.startswith("chg_")
    row = charge_row(runtime.sessions, outcome.reference)
    assert row.idempotency_key == f"charge:{outcome.reference}"
    assert attempts_for(sandbox, outcome.reference) == 1


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (1999, "yen", "not one Stripe can charge in"),
        (49, "usd", "under Stripe's minimum"),
        (10, "jpy", "under Stripe's minimum"),
        (0, "usd", "positive whole number"),
    ],
)
def test_invalid_requests_charge_nothing_and_write_nothing(
    runtime: Runtime,
    sandbox: Any,
    fast: ChargeOptions,
    amount: int,
    currency: str,
    message: str,
) -> None:
    customer, _method = sandbox.saved_card("invalid@example.com", "pm_card_visa")
    with pytest.raises(InvalidInput, match=message):
        charge_off_session(
            runtime, ChargeRequest(customer, amount, currency, reference="bad"), fast
        )
    assert attempts_for(sandbox, "bad") == 0
    with runtime.sessions() as session:
        assert session.scalars(select(Charge)).all() == []


def test_an_unknown_customer_is_named(runtime: Runtime, sandbox: Any, fast: ChargeOptions) -> None:
    with pytest.raises(NotFound, match="customer cus_nobody does not exist"):
        charge_off_session(runtime, ChargeRequest("cus_nobody", 1999, "jpy", reference="x"), fast)
    with runtime.sessions() as session:
        assert session.scalars(select(Charge)).all() == []


def test_an_unknown_customer_with_a_named_method_is_refused_by_stripe(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    _customer, method = sandbox.saved_card("owner@example.com", "pm_card_visa")
    request = ChargeRequest("cus_nobody", 1999, "jpy", payment_method_id=method, reference="y")
    with pytest.raises(ChargeRefused, match="customer cus_nobody does not exist in Stripe"):
        charge_off_session(runtime, request, fast)
    row = charge_row(runtime.sessions, "y")
    assert (row.status, row.error_code) == ("error", "resource_missing")
    assert attempts_for(sandbox, "y") == 0
    # The refusal is final: asking again gives the same answer without charging.
    with pytest.raises(ChargeRefused, match="does not exist"):
        charge_off_session(runtime, request, fast)


def test_a_currency_stripe_refuses_is_mapped_to_a_clear_refusal(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer, _method = sandbox.saved_card("isk@example.com", "pm_card_visa")
    with pytest.raises(ChargeRefused, match="Stripe refused the charge") as caught:
        charge_off_session(runtime, ChargeRequest(customer, 5000, "isk", reference="isk"), fast)
    assert caught.value.field == "currency"
    assert charge_row(runtime.sessions, "isk").status == "error"
    assert attempts_for(sandbox, "isk") == 0


def test_a_customer_without_a_usable_method_is_refused(
    runtime: Runtime, sandbox: Any, fast: ChargeOptions
) -> None:
    customer = sandbox.client.v1.customers.create({"email": "empty@example.com"}).id
    with pytest.raises(InvalidInput, match="no usable saved payment method") as caught:
        charge_off_session(runtime, ChargeRequest(customer, 1999, "jpy", reference="z"), fast)
    assert caught.value.code == "no_usable_payment_method"
    with runtime.sessions() as session:
        assert session.scalars(select(Charge)).all() == []
