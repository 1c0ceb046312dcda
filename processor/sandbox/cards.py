"""Stripe's documented test payment methods (STRIPE.md section 4) and what each one does.

A card's behaviour has three parts: whether issuers refuse it outright (it cannot be saved),
whether on-session use asks for 3-D Secure, and what happens to later off-session charges.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str
    param: str | None = None
    # What issuers and networks advise about retrying (docs/sandbox.md lists the values).
    advice_code: str | None = None
    network_advice_code: str | None = None
    network_decline_code: str | None = None

    def advice(self) -> dict[str, Any]:
        """The advice fields that are set, as a card error carries them (nulls left out)."""
        fields = {
            "advice_code": self.advice_code,
            "network_advice_code": self.network_advice_code,
            "network_decline_code": self.network_decline_code,
        }
        return {key: value for key, value in fields.items() if value is not None}


LATER = "try_again_later"
NEVER = "do_not_try_again"
NEW_DATA = "confirm_card_data"
DECLINED = "Your card was declined."
GENERIC = Decline(
    "card_declined", "generic_decline", DECLINED, advice_code=LATER, network_decline_code="05"
)
INSUFFICIENT = Decline(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
    advice_code=LATER,
    network_decline_code="51",
)
# Sandbox-only cards for the retry ladder: a decline the issuer says never to retry.
NEVER_RETRY = Decline(
    "card_declined",
    "do_not_honor",
    DECLINED,
    advice_code=NEVER,
    network_advice_code="03",
    network_decline_code="05",
)
AUTH_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)

@dataclass(frozen=True)
class DisputeKind:
    """What a dispute test card's charge turns into once it succeeds."""

    reason: str
    inquiry: bool
    network_reason_code: str


FRAUD_DISPUTE = DisputeKind("fraudulent", inquiry=False, network_reason_code="10.4")
FRAUD_INQUIRY = DisputeKind("fraudulent", inquiry=True, network_reason_code="10.4")
NOT_RECEIVED_DISPUTE = DisputeKind(
    "product_not_received", inquiry=False, network_reason_code="13.1"
)

# Off-session outcomes.
OK = "ok"
AUTH = "authentication_required"
AUTH_UNLESS_SET_UP = "authentication_required_unless_set_up"


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    country: str = "US"
    funding: str = "credit"
    refused: Decline | None = None  # issuer declines: cannot be attached, every charge fails
    three_d_secure: bool = False  # setups and on-session payments ask for 3-D Secure
    off_session: str = OK
    charge_decline: Decline | None = None  # charges fail even after setup / authentication
    dispute: DisputeKind | None = None  # a successful charge is disputed straight away
    # With charge_decline: only this many charges of one saved method fail; None means all.
    declines_before_success: int | None = None

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


def _declined(number: str, decline: Decline) -> TestCard:
    return TestCard(number, "visa", refused=decline)


CARDS: dict[str, TestCard] = {
    "visa": TestCard("4242424242424242", "visa"),
    "visa_debit": TestCard("4000056655665556", "visa", funding="debit"),
    "us": TestCard("4242424242424242", "visa"),
    "mastercard": TestCard("5555555555554444", "mastercard"),
    "mastercard_debit": TestCard("5200828282828210", "mastercard", funding="debit"),
    "mastercard_prepaid": TestCard("5105105105105100", "mastercard", funding="prepaid"),
    "amex": TestCard("378282246310005", "amex"),
    "amex_threeDSecureNotSupported": TestCard("378282246310005", "amex"),
    "discover": TestCard("6011111111111117", "discover"),
    "jcb": TestCard("3566002020360505", "jcb", country="JP"),
    "threeDSecureOptional": TestCard("4000000000003055", "visa"),
    "authenticationRequiredOnSetup": TestCard(
        "4000002500003155", "visa", three_d_secure=True, off_session=AUTH_UNLESS_SET_UP
    ),
    "authenticationRequired": TestCard(
        "4000002760003184", "visa", three_d_secure=True, off_session=AUTH
    ),
    "authenticationRequiredSetupForOffSession": TestCard(
        "4000003800000446", "visa", three_d_secure=True
    ),
    "authenticationRequiredChargeDeclinedInsufficientFunds": TestCard(
        "4000008260003178", "visa", three_d_secure=True, charge_decline=INSUFFICIENT
    ),
    "threeDSecure2Required": TestCard(
        "4000000000003220", "visa", country="IE", three_d_secure=True, off_session=AUTH
    ),
    "threeDSecureRequiredChargeDeclined": TestCard(
        "4000008400001629", "visa", three_d_secure=True, charge_decline=GENERIC
    ),
    "chargeCustomerFail": TestCard("4000000000000341", "visa", charge_decline=GENERIC),
    "chargeDeclined": _declined("4000000000000002", GENERIC),
    "visa_chargeDeclined": _declined("4000000000000002", GENERIC),
    "chargeDeclinedInsufficientFunds": _declined("4000000000009995", INSUFFICIENT),
    "visa_chargeDeclinedInsufficientFunds": _declined("4000000000009995", INSUFFICIENT),
    "visa_chargeDeclinedLostCard": _declined(
        "4000000000009987",
        Decline(
            "card_declined", "lost_card", DECLINED, advice_code=NEVER, network_decline_code="41"
        ),
    ),
    "visa_chargeDeclinedStolenCard": _declined(
        "4000000000009979",
        Decline(
            "card_declined", "stolen_card", DECLINED, advice_code=NEVER, network_decline_code="43"
        ),
    ),
    "chargeDeclinedExpiredCard": _declined(
        "4000000000000069",
        Decline(
            "expired_card",
            None,
            "Your card has expired.",
            "exp_month",
            advice_code=NEW_DATA,
            network_decline_code="54",
        ),
    ),
    "chargeDeclinedIncorrectCvc": _declined(
        "4000000000000127",
        Decline(
            "incorrect_cvc",
            None,
            "Your card's security code is incorrect.",
            "cvc",
            advice_code=NEW_DATA,
            network_decline_code="N7",
        ),
    ),
    "chargeDeclinedProcessingError": _declined(
        "4000000000000119",
        Decline(
            "processing_error",
            None,
            "An error occurred while processing your card. Try again in a little bit.",
            advice_code=LATER,
            network_decline_code="96",
        ),
    ),
    "visa_chargeDeclinedVelocityLimitExceeded": _declined(
        "4000000000006975",
        Decline(
            "card_declined",
            "card_velocity_exceeded",
            "Your card was declined for making repeated attempts too frequently or exceeding "
            "its amount limit.",
            advice_code=LATER,
            network_decline_code="61",
        ),
    ),
    "createDispute": TestCard("4000000000000259", "visa", dispute=FRAUD_DISPUTE),
    "createDisputeInquiry": TestCard("4000000000001976", "visa", dispute=FRAUD_INQUIRY),
    "createDisputeProductNotReceived": TestCard(
        "4000000000002685", "visa", dispute=NOT_RECEIVED_DISPUTE
    ),
    "radarBlock": _declined(
        "4100000000000019",
        Decline(
            "card_declined", "fraudulent", DECLINED, advice_code=NEVER, network_decline_code="59"
        ),
    ),
    # Sandbox-only saved cards for the retry ladder (Stripe has no card whose answer changes).
    "sandbox_insufficientFundsThenSucceeds": TestCard(
        "4000000000004905", "visa", charge_decline=INSUFFICIENT, declines_before_success=1
    ),
    "sandbox_chargeDeclinedDoNotTryAgain": TestCard(
        "5105105105105506", "mastercard", charge_decline=NEVER_RETRY
    ),
}

# Extra numbers without a magic id of their own.
_EXTRA_NUMBERS = {
    "4000008400000027": TestCard("4000008400000027", "visa", three_d_secure=True, off_session=AUTH),
    "4000000032200000": TestCard("4000000032200000", "visa"),
}

BY_NUMBER: dict[str, TestCard] = {
    **{c.number: c for c in reversed(CARDS.values())},
    **_EXTRA_NUMBERS,
}
BY_NUMBER["4242424242424242"] = CARDS["visa"]


def card_for_magic_id(payment_method_id: str) -> TestCard | None:
    if not payment_method_id.startswith("pm_card_"):
        return None
    return CARDS.get(payment_method_id.removeprefix("pm_card_"))


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number.startswith(("6011", "65")):
        return "discover"
    if number[:4].isdigit() and "3528" <= number[:4] <= "3589":
        return "jcb"
    return "unknown"


def card_for_number(number: str) -> TestCard:
    """A documented test number keeps its behaviour; any other valid number acts like 4242."""
    return BY_NUMBER.get(number) or TestCard(number, brand_of(number))


# SEPA Direct Debit: the IBAN decides whether the debit settles or fails.
@dataclass(frozen=True)
class TestIban:
    iban: str
    country: str
    failure: Decline | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.iban.encode()).hexdigest()[:16]


SEPA_FAILED = Decline(
    "payment_method_provider_decline", "generic_could_not_process", "The payment failed."
)
SEPA_INSUFFICIENT = Decline(
    "payment_method_provider_decline", "insufficient_funds", "The payment failed."
)

IBANS: dict[str, TestIban] = {
    iban.iban: iban
    for iban in (
        TestIban("DE89370400440532013000", "DE"),
        TestIban("DE62370400440532013001", "DE", SEPA_FAILED),
        TestIban("DE08370400440532013003", "DE"),
        TestIban("DE78370400440532013004", "DE", SEPA_FAILED),
        TestIban("DE65370400440002222227", "DE", SEPA_INSUFFICIENT),
        TestIban("NL39RABO0300065264", "NL"),
        TestIban("NL91ABNA0417164300", "NL", SEPA_FAILED),
        TestIban("NL27RABO0002222227", "NL", SEPA_INSUFFICIENT),
        TestIban("AT611904300234573201", "AT"),
        TestIban("AT861904300235473202", "AT", SEPA_FAILED),
        TestIban("BE62510007547061", "BE"),
        TestIban("BE68539007547034", "BE", SEPA_FAILED),
        TestIban("FR1420041010050500013M02606", "FR"),
        TestIban("FR8420041010050500013M02607", "FR", SEPA_FAILED),
    )
}

SEPA_MAGIC_IDS = {
    "pm_sepaDebit_success_de": "DE89370400440532013000",
    "pm_sepaDebit_failed_de": "DE62370400440532013001",
    "pm_sepaDebit_success_nl": "NL39RABO0300065264",
    "pm_sepaDebit_failed_nl": "NL91ABNA0417164300",
}


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and compact[2:4].isdigit()):
        return False
    if not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def iban_for(iban: str) -> TestIban:
    compact = iban.replace(" ", "").upper()
    return IBANS.get(compact) or TestIban(compact, compact[:2])
