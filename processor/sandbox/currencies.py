"""Currencies the sandbox accepts, their exponent and Stripe's minimum charge amount."""

from __future__ import annotations

from processor.sandbox.errors import invalid_request

ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)

# Minimum charge in the currency's smallest unit (Stripe's published minimums).
MINIMUMS: dict[str, int] = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "jpy": 50,
    "aud": 50,
    "cad": 50,
    "chf": 50,
    "nzd": 50,
    "sgd": 50,
    "brl": 50,
    "inr": 50,
    "hkd": 400,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "pln": 200,
    "czk": 1500,
    "huf": 17500,
    "ron": 200,
    "bgn": 100,
    "mxn": 1000,
    "myr": 200,
    "thb": 1000,
    "aed": 200,
    "krw": 500,
}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "krw": "₩"}
MAX_AMOUNT = 99_999_999


def validate_amount(amount: int, currency: str) -> None:
    if currency not in MINIMUMS:
        raise invalid_request(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: "
            + ", ".join(sorted(MINIMUMS)),
            param="currency",
        )
    minimum = MINIMUMS[currency]
    if amount < minimum:
        raise invalid_request(
            f"Amount must be at least {format_amount(minimum, currency)} {currency}",
            param="amount",
            code="amount_too_small",
        )
    if amount > MAX_AMOUNT:
        raise invalid_request(
            f"Amount must be no more than {format_amount(MAX_AMOUNT, currency)} {currency}",
            param="amount",
            code="amount_too_large",
        )


def format_amount(amount: int, currency: str) -> str:
    symbol = SYMBOLS.get(currency, "")
    if currency in ZERO_DECIMAL:
        return f"{symbol}{amount:,}"
    return f"{symbol}{amount / 100:,.2f}"
