"""Money rules Stripe applies to a charge, checked before anything is sent.

Currencies Stripe accepts and Stripe's documented minimum charge amounts (each currency's
minor-unit exponent is `processor.recovery.money`'s). Currencies without a published minimum
are left to Stripe to judge.
"""

from __future__ import annotations

from babel.numbers import format_currency

from processor.errors import InvalidInput
from processor.recovery.money import (
    THREE_DECIMAL_CURRENCIES,
    minor_unit_exponent,
    to_major_units,
)

MAX_AMOUNT = 99_999_999  # Stripe accepts up to eight digits in the minor unit

_SUPPORTED = """
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp
    byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip
    gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt
    lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr
    nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd
    std szl thb tjs top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw
    """
SUPPORTED_CURRENCIES = frozenset(_SUPPORTED.split())

# Stripe's published minimum charge amounts, in each currency's minor unit.
MINIMUM_AMOUNTS = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip


def normalise_currency(currency: str) -> str:
    """`JPY` -> `jpy`, refusing what Stripe would refuse."""
    code = currency.strip().lower()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidInput(
            f"currency {currency!r} is not a three-letter ISO 4217 code such as usd or jpy",
            field="currency",
            code="invalid_currency",
        )
    if code not in SUPPORTED_CURRENCIES:
        raise InvalidInput(
            f"currency {code!r} is not one Stripe can charge in",
            field="currency",
            code="invalid_currency",
        )
    return code


def check_amount(amount: int, currency: str) -> None:
    """Refuse amounts Stripe would refuse: not positive, under the minimum, over eight digits."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(
            "amount must be a positive whole number in the currency's minor unit",
            field="amount",
            code="invalid_amount",
        )
    if amount > MAX_AMOUNT:
        raise InvalidInput(
            f"amount {amount} is over Stripe's maximum of {MAX_AMOUNT}",
            field="amount",
            code="amount_too_large",
        )
    minimum = MINIMUM_AMOUNTS.get(currency)
    if minimum is not None and amount < minimum:
        raise InvalidInput(
            f"amount {format_money(amount, currency)} is under Stripe's minimum charge of "
            f"{format_money(minimum, currency)}",
            field="amount",
            code="amount_too_small",
        )
    if currency in THREE_DECIMAL_CURRENCIES and amount % 10:
        raise InvalidInput(
            f"amounts in {currency.upper()} must end in 0 (Stripe rounds to two decimals)",
            field="amount",
            code="invalid_amount",
        )


def parse_amount(text: str) -> int:
    """A whole number of minor units, as typed on a command line or in a CSV cell."""
    cleaned = text.strip()
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise InvalidInput(
            f"amount {text!r} is not a whole number of minor units (write 1999 for 19.99)",
            field="amount",
            code="invalid_amount",
        )
    return int(cleaned)


def format_money(amount: int, currency: str) -> str:
    """`1999, "jpy"` -> `¥1,999`; `1999, "usd"` -> `$19.99`, with Stripe's exponent."""
    digits = minor_unit_exponent(currency)
    pattern = "¤#,##0" + ("." + "0" * digits if digits else "")
    return format_currency(
        to_major_units(amount, currency),
        currency.upper(),
        format=pattern,
        locale="en_US",
        currency_digits=False,
    )
