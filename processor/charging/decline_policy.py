"""After an off-session decline: retry later, never retry, or ask the customer to authenticate.

Pure: no I/O, no clock. The rules are one ordered table so that a reviewer reads the whole
policy in one place; the first rule that matches wins, and what no rule knows is never retried
(an automatic retry is the one action that can hurt: card networks fine excessive reattempts).
Nothing here imports the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class DeclineAction(Enum):
    """The three answers the retry ladder understands."""

    RETRY = "retry"
    NEVER = "never"
    AUTHENTICATE = "authenticate"


@dataclass(frozen=True, slots=True)
class Decline:
    """The fields of a Stripe card error that decide whether a retry is allowed."""

    code: str | None = None
    decline_code: str | None = None
    advice_code: str | None = None
    network_advice_code: str | None = None
    network_decline_code: str | None = None


# Issuer answers that mean the card or account itself is unusable, or that a retry could
# charge twice (duplicate_transaction): retrying them is what networks fine.
HARD_DECLINE_CODES = frozenset({
    "call_issuer", "card_not_supported", "currency_not_supported", "do_not_try_again",
    "duplicate_transaction", "expired_card", "fraudulent", "incorrect_cvc", "incorrect_number",
    "incorrect_pin", "incorrect_zip", "invalid_account", "invalid_amount", "invalid_cvc",
    "invalid_expiry_month", "invalid_expiry_year", "invalid_number", "invalid_pin",
    "live_mode_test_card", "lost_card", "merchant_blacklist", "new_account_information_available",
    "pickup_card", "pin_try_exceeded", "restricted_card", "revocation_of_all_authorizations",
    "revocation_of_authorization", "security_violation", "service_not_allowed", "stolen_card",
    "stop_payment_order", "testmode_decline", "transaction_not_allowed",
})
# Temporary conditions Stripe Billing's own retries treat as worth another attempt later.
SOFT_DECLINE_CODES = frozenset({
    "approve_with_id", "card_velocity_exceeded", "do_not_honor", "generic_decline",
    "insufficient_funds", "issuer_not_available", "no_action_taken", "not_permitted",
    "processing_error", "reenter_transaction", "try_again_later",
    "withdrawal_count_limit_exceeded",
})
# Top-level `code`s of card errors that carry no decline_code but are temporary.
SOFT_ERROR_CODES = frozenset({"processing_error"})
# Visa "issuer will never approve" (category 1) and data-quality (category 3) response codes;
# the same ISO 8583 codes mean lost, stolen, closed or invalid on Mastercard too.
NEVER_NETWORK_DECLINE_CODES = frozenset({
    "04", "07", "12", "14", "15", "41", "43", "46", "54", "55", "57", "6P", "82", "N7",
    "R0", "R1", "R3",
})
# Network answers that ask for strong customer authentication (Visa 1A, Mastercard 65 with SCA).
AUTHENTICATE_NETWORK_DECLINE_CODES = frozenset({"1A"})
# Mastercard merchant advice codes: 01 new account information, 03 do not try again,
# 21 payment cancelled (stop recurring). Each forbids an automatic reattempt.
NEVER_NETWORK_ADVICE_CODES = frozenset({"01", "03", "21"})

AUTHENTICATION_REQUIRED = "authentication_required"


# Ordered: an explicit "never" from Stripe or the network outranks everything, including a
# request to authenticate (a 3-D Secure retry on the same card is still a reattempt); then
# authentication; then the issuer's reason; Stripe's advice only decides what is left.
RULES: tuple[tuple[str, frozenset[str], DeclineAction], ...] = (
    ("advice_code", frozenset({"do_not_try_again"}), DeclineAction.NEVER),
    ("network_advice_code", NEVER_NETWORK_ADVICE_CODES, DeclineAction.NEVER),
    ("network_decline_code", NEVER_NETWORK_DECLINE_CODES, DeclineAction.NEVER),
    ("code", frozenset({AUTHENTICATION_REQUIRED}), DeclineAction.AUTHENTICATE),
    ("decline_code", frozenset({AUTHENTICATION_REQUIRED}), DeclineAction.AUTHENTICATE),
    ("network_decline_code", AUTHENTICATE_NETWORK_DECLINE_CODES, DeclineAction.AUTHENTICATE),
    ("decline_code", HARD_DECLINE_CODES, DeclineAction.NEVER),
    ("advice_code", frozenset({"confirm_card_data"}), DeclineAction.NEVER),
    ("decline_code", SOFT_DECLINE_CODES, DeclineAction.RETRY),
    ("advice_code", frozenset({"try_again_later"}), DeclineAction.RETRY),
    ("code", SOFT_ERROR_CODES, DeclineAction.RETRY),
)


def classify_decline(
    code: str | None,
    decline_code: str | None = None,
    advice_code: str | None = None,
    network_advice_code: str | None = None,
    network_decline_code: str | None = None,
) -> DeclineAction:
    """The action for one decline; unknown combinations are never retried."""
    decline = Decline(code, decline_code, advice_code, network_advice_code, network_decline_code)
    for field, values, action in RULES:
        if getattr(decline, field) in values:
            return action
    return DeclineAction.NEVER
