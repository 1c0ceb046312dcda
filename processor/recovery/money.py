"""Money as Stripe counts it: integer minor units with each currency's real exponent.

Stripe's amounts are in the currency's smallest unit, and not every currency has cents: JPY
has no minor unit, KWD has three. Formatting for people is babel's job, in their locale.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

# Stripe's published lists; every other currency it supports has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places one minor unit sits below the major unit (JPY 0, USD 2)."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def to_major_units(amount: int, currency: str) -> Decimal:
    """1999 usd -> Decimal('19.99'); 1999 jpy -> Decimal('1999')."""
    return Decimal(amount).scaleb(-minor_unit_exponent(currency))


def format_money(amount: int, currency: str, locale: str) -> str:
    """The amount as a person reading `locale` expects it: "$19.99", "￥1,999"."""
    return format_currency(to_major_units(amount, currency), currency.upper(), locale=locale)
