"""The keys each hash parameter takes, so that an unknown key is refused at any depth.

A parameter name means the same hash on every endpoint that takes it (as in Stripe's API), so
one table serves them all. `None` is a leaf (any value); `OPEN` is a hash the sandbox does not
read and accepts as given. Imports nothing from the sandbox.
"""

from __future__ import annotations

from typing import Union

OPEN = "open"
Shape = Union[dict[str, "Shape"], str, None]  # noqa: UP007 (a recursive alias needs Union)


def _leaves(*names: str) -> dict[str, Shape]:
    return dict.fromkeys(names)


ADDRESS = _leaves("city", "country", "line1", "line2", "postal_code", "state")
BILLING_DETAILS: dict[str, Shape] = {
    "address": ADDRESS,
    **_leaves("email", "name", "phone", "tax_id"),
}
CARD: dict[str, Shape] = {
    **_leaves("number", "exp_month", "exp_year", "cvc", "token"),
    "networks": _leaves("preferred"),
}
SEPA_DEBIT = _leaves("iban")
RADAR_OPTIONS = _leaves("session")
CARD_OPTIONS: dict[str, Shape] = {
    **_leaves(
        "capture_method",
        "cvc_token",
        "moto",
        "network",
        "request_extended_authorization",
        "request_incremental_authorization",
        "request_multicapture",
        "request_overcapture",
        "request_three_d_secure",
        "require_cvc_recollection",
        "setup_future_usage",
        "statement_descriptor_suffix_kana",
        "statement_descriptor_suffix_kanji",
    ),
    "installments": OPEN,
    "mandate_options": OPEN,
    "three_d_secure": OPEN,
}

SHAPES: dict[str, Shape] = {
    "address": ADDRESS,
    "automatic_payment_methods": _leaves("enabled", "allow_redirects"),
    "billing_details": BILLING_DETAILS,
    "card": CARD,
    "created": _leaves("gt", "gte", "lt", "lte"),
    "invoice_settings": {
        **_leaves("default_payment_method", "footer"),
        "custom_fields": OPEN,
        "rendering_options": OPEN,
    },
    "mandate_data": {
        "customer_acceptance": {
            **_leaves("type", "accepted_at"),
            "online": _leaves("ip_address", "user_agent", "infer_from_client"),
            "offline": {},
        }
    },
    "payment_method_data": {
        **_leaves("type", "allow_redisplay"),
        "billing_details": BILLING_DETAILS,
        "card": CARD,
        "sepa_debit": SEPA_DEBIT,
        "metadata": OPEN,
        "radar_options": RADAR_OPTIONS,
        "ideal": _leaves("bank"),
        "bancontact": {},
    },
    "payment_method_options": {
        "card": CARD_OPTIONS,
        "sepa_debit": {**_leaves("setup_future_usage", "target_date"), "mandate_options": OPEN},
    },
    "radar_options": RADAR_OPTIONS,
    "sepa_debit": SEPA_DEBIT,
    "shipping": {
        "address": ADDRESS,
        **_leaves("name", "phone", "carrier", "tracking_number"),
    },
    "transfer_data": _leaves("amount", "destination"),
    "metadata": OPEN,
}


def first_unknown(name: str, value: object) -> str | None:
    """The bracket path of the first key `value` has that the shape of `name` lacks."""
    return _first_unknown(SHAPES.get(name), value, name)


def _first_unknown(shape: Shape, value: object, path: str) -> str | None:
    if not isinstance(shape, dict) or not isinstance(value, dict):
        return None
    for key, child in value.items():
        if key not in shape:
            return f"{path}[{key}]"
        found = _first_unknown(shape[key], child, f"{path}[{key}]")
        if found:
            return found
    return None
