"""Money rules and request validation: what is refused before Stripe is ever asked."""

from __future__ import annotations

import pytest

from processor.charging.amounts import (
    check_amount,
    format_money,
    normalise_currency,
    parse_amount,
)
from processor.charging.request import (
    ChargeOutcome,
    ChargeRequest,
    idempotency_key,
    new_reference,
)
from processor.errors import InvalidInput
from processor.recovery.money import minor_unit_exponent


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "usd", "$19.99"),
        (1999, "jpy", "¥1,999"),
        (50, "eur", "€0.50"),
        (1990, "kwd", "KWD1.990"),
    ],
)
def test_money_is_formatted_with_the_currencys_exponent(
    amount: int, currency: str, shown: str
) -> None:
    assert format_money(amount, currency) == shown


def test_exponents_follow_stripe() -> None:
    digits = [minor_unit_exponent(code) for code in ("jpy", "usd", "bhd")]
    assert digits == [0, 2, 3]


@pytest.mark.parametrize("currency", ["JPY", " usd ", "Eur"])
def test_currency_is_normalised_to_lower_case(currency: str) -> None:
    assert normalise_currency(currency) == currency.strip().lower()


@pytest.mark.parametrize(
    ("currency", "reason"),
    [
        ("yen", "not one Stripe"),
        ("us", "three-letter"),
        ("u$d", "three-letter"),
        ("", "three-letter"),
    ],
)
def test_bad_currencies_are_refused_with_a_reason(currency: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        normalise_currency(currency)
    assert caught.value.field == "currency"


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (49, "usd", "amount_too_small"),
        (29, "gbp", "amount_too_small"),
        (49, "jpy", "amount_too_small"),
        (0, "usd", "invalid_amount"),
        (-5, "usd", "invalid_amount"),
        (100_000_000, "usd", "amount_too_large"),
        (1995, "kwd", "invalid_amount"),
    ],
)
def test_amounts_stripe_would_refuse_are_refused(amount: int, currency: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_amount(amount, currency)
    assert caught.value.code == code


def test_minimums_are_inclusive_and_unknown_minimums_left_to_stripe() -> None:
    check_amount(50, "usd")
    check_amount(30, "gbp")
    check_amount(1, "isk")  # no published minimum: Stripe decides


def test_minimum_message_shows_money_not_minor_units() -> None:
    with pytest.raises(InvalidInput, match=r"\$0\.49 is under Stripe's minimum charge of \$0\.50"):
        check_amount(49, "usd")


@pytest.mark.parametrize("text", ["19.99", "1e3", "-5", "", "12 34", "\uff10\uff11"])
def test_amounts_must_be_whole_minor_units(text: str) -> None:
    with pytest.raises(InvalidInput, match="whole number"):
        parse_amount(text)


def test_validated_request_gets_a_fresh_reference_and_normalised_fields() -> None:
    first = ChargeRequest("cus_A1", 1999, "JPY", description="  ").validated()
    second = ChargeRequest("cus_A1", 1999, "JPY").validated()
    assert first.currency == "jpy"
    assert first.description is None
    assert first.reference and second.reference and first.reference != second.reference
    assert first.reference.startswith("chg_")
    assert idempotency_key(first.reference) == f"charge:{first.reference}"


def test_problems_lists_every_field_at_once() -> None:
    request = ChargeRequest("bob", 10, "usd", payment_method_id="card_1", reference=" bad ref")
    fields = sorted(problem.field or "" for problem in request.problems())
    assert fields == ["amount", "customer", "payment_method", "reference"]


def test_references_are_bounded_and_plain() -> None:
    ChargeRequest("cus_A", 100, "usd", reference="INV-2026/0001#2").validated()
    for bad in ["x" * 201, "with space", "-leading-dash", "naïve"]:
        with pytest.raises(InvalidInput):
            ChargeRequest("cus_A", 100, "usd", reference=bad).validated()
    assert len(new_reference()) <= 200


@pytest.mark.parametrize(
    ("status", "error_code", "decline_code", "kind", "category"),
    [
        ("succeeded", None, None, None, "succeeded"),
        ("processing", None, None, None, "processing"),
        (
            "failed",
            "authentication_required",
            "authentication_required",
            "authentication_required",
            "needs_authentication",
        ),
        (
            "failed",
            "card_declined",
            "insufficient_funds",
            "payment_method_required",
            "needs_new_method",
        ),
        ("requires_action", "authentication_required", None, None, "needs_authentication"),
        ("error", "resource_missing", None, None, "error"),
        ("pending", None, None, None, "error"),
    ],
)
def test_outcome_categories(
    status: str, error_code: str | None, decline_code: str | None, kind: str | None, category: str
) -> None:
    outcome = ChargeOutcome(
        reference="r",
        status=status,
        customer_id="cus_A",
        amount=100,
        currency="usd",
        error_code=error_code,
        decline_code=decline_code,
        recovery_kind=kind,
    )
    assert outcome.category == category
    assert outcome.declined == (category in ("needs_authentication", "needs_new_method"))
