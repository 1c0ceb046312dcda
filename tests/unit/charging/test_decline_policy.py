"""The decline policy over every combination of the values it knows, plus unknown ones."""

from __future__ import annotations

import itertools

import pytest

from processor.charging.decline_policy import (
    AUTHENTICATE_NETWORK_DECLINE_CODES,
    HARD_DECLINE_CODES,
    NEVER_NETWORK_ADVICE_CODES,
    NEVER_NETWORK_DECLINE_CODES,
    SOFT_DECLINE_CODES,
    DeclineAction,
    classify_decline,
)

RETRY, NEVER, AUTH = DeclineAction.RETRY, DeclineAction.NEVER, DeclineAction.AUTHENTICATE

CODES = [
    None,
    "card_declined",
    "authentication_required",
    "processing_error",
    "expired_card",
    "incorrect_cvc",
    "something_new",
]
DECLINE_CODES = [
    None,
    "authentication_required",
    "something_new",
    *sorted(HARD_DECLINE_CODES),
    *sorted(SOFT_DECLINE_CODES),
]
ADVICE = [None, "try_again_later", "do_not_try_again", "confirm_card_data", "something_new"]
NETWORK_ADVICE = [None, "02", "24", "99", *sorted(NEVER_NETWORK_ADVICE_CODES)]
NETWORK_DECLINE = [
    None,
    "05",
    "51",
    "91",
    "ZZ",
    *sorted(NEVER_NETWORK_DECLINE_CODES),
    *sorted(AUTHENTICATE_NETWORK_DECLINE_CODES),
]


def _every_decline() -> itertools.product[tuple[str | None, ...]]:
    return itertools.product(CODES, DECLINE_CODES, ADVICE, NETWORK_ADVICE, NETWORK_DECLINE)


def _expected(code, decline, advice, net_advice, net_decline) -> DeclineAction:
    """The policy restated as the issue words it, independently of the rule table's order."""
    forbidden = (
        advice == "do_not_try_again"
        or net_advice in NEVER_NETWORK_ADVICE_CODES
        or net_decline in NEVER_NETWORK_DECLINE_CODES
    )
    if forbidden:
        return NEVER
    if "authentication_required" in (code, decline) or net_decline == "1A":
        return AUTH
    if decline in HARD_DECLINE_CODES or advice == "confirm_card_data":
        return NEVER
    if decline in SOFT_DECLINE_CODES or advice == "try_again_later":
        return RETRY
    return RETRY if code == "processing_error" else NEVER


def test_every_combination_matches_the_written_policy() -> None:
    mismatches = [
        (combo, classify_decline(*combo), _expected(*combo))
        for combo in _every_decline()
        if classify_decline(*combo) is not _expected(*combo)
    ]
    assert mismatches == []


def test_no_combination_retries_what_stripe_or_the_network_forbids() -> None:
    for code, decline, advice, net_advice, net_decline in _every_decline():
        action = classify_decline(code, decline, advice, net_advice, net_decline)
        if advice == "do_not_try_again" or net_advice in {"03", "21"}:
            assert action is NEVER
        if decline in {"lost_card", "stolen_card", "fraudulent", "pickup_card", "invalid_account"}:
            assert action is not RETRY


def test_hard_and_soft_lists_do_not_overlap() -> None:
    assert HARD_DECLINE_CODES.isdisjoint(SOFT_DECLINE_CODES)


@pytest.mark.parametrize(
    ("fields", "action"),
    [
        # What Stripe's test cards answer (STRIPE.md section 4).
        (("card_declined", "insufficient_funds", "try_again_later", "02", "51"), RETRY),
        (("card_declined", "generic_decline", None, None, None), RETRY),
        (("card_declined", "lost_card", "do_not_try_again", "03", "41"), NEVER),
        (("card_declined", "stolen_card", "do_not_try_again", None, "43"), NEVER),
        (("expired_card", None, "confirm_card_data", None, "54"), NEVER),
        (("incorrect_cvc", None, "confirm_card_data", None, "N7"), NEVER),
        (("processing_error", None, "try_again_later", None, None), RETRY),
        (("authentication_required", "authentication_required", None, None, "1A"), AUTH),
        (("card_declined", "authentication_required", None, None, None), AUTH),
        (("card_declined", "card_velocity_exceeded", "try_again_later", None, "61"), RETRY),
        # A soft reason the issuer still says never to retry.
        (("card_declined", "insufficient_funds", "do_not_try_again", None, None), NEVER),
        (("card_declined", "insufficient_funds", None, "21", None), NEVER),
        # Nothing known: no automatic retry.
        ((None, None, None, None, None), NEVER),
        (("card_declined", "brand_new_reason", None, None, None), NEVER),
        (("card_declined", "brand_new_reason", "try_again_later", None, None), RETRY),
    ],
)
def test_stripe_test_card_answers(fields: tuple[str | None, ...], action: DeclineAction) -> None:
    assert classify_decline(*fields) is action
