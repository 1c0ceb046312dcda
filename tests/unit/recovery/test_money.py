"""Money is shown with the currency's real exponent, in the reader's locale."""

from __future__ import annotations

from decimal import Decimal

import pytest

from processor.recovery.money import format_money, minor_unit_exponent, to_major_units


@pytest.mark.parametrize(
    ("currency", "exponent"), [("usd", 2), ("EUR", 2), ("jpy", 0), ("krw", 0), ("kwd", 3)]
)
def test_exponent(currency: str, exponent: int) -> None:
    assert minor_unit_exponent(currency) == exponent


def test_major_units() -> None:
    assert to_major_units(1999, "usd") == Decimal("19.99")
    assert to_major_units(1999, "jpy") == Decimal("1999")
    assert to_major_units(1999, "kwd") == Decimal("1.999")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        (1999, "usd", "en", "$19.99"),
        (1999, "jpy", "en", "¥1,999"),
        (1999, "jpy", "ja", "￥1,999"),
        (1999, "usd", "ja", "$19.99"),
        (123456, "eur", "en", "€1,234.56"),
        (1500, "kwd", "en", "KWD1.500"),
    ],
)
def test_format(amount: int, currency: str, locale: str, shown: str) -> None:
    assert format_money(amount, currency, locale).replace("\xa0", "") == shown
