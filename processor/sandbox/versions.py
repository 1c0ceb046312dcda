"""API versions: which version a request runs at, and every behaviour gated by version.

Stripe runs each request at its `Stripe-Version` header, else at the account's default.
Imports only the sandbox's errors, so any resource may ask `applies(call.api_version, ...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import stripe

from processor.sandbox.errors import invalid_request

# The version stripe-python pins: what the account default is unless configured otherwise.
PINNED_API_VERSION: str = stripe.api_version
_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")


@dataclass(frozen=True)
class VersionChange:
    """A behaviour that holds from `since` on (and not before), and where Stripe said so."""

    since: str
    source: str


CHG_ENDIVE = (
    "https://docs.stripe.com/changelog/endive/2026-09-30/"
    "removes-the-payment-method-types-parameter-from-payment-intents-and-setup-intents"
)

# One table for every version-dependent behaviour the sandbox implements.
CHANGES: dict[str, VersionChange] = {
    # Intents created without `payment_method_types` get automatic payment methods.
    "automatic_payment_methods_by_default": VersionChange(
        "2023-08-16", "https://docs.stripe.com/upgrades#2023-08-16"
    ),
    # Writing `payment_method_types` on PaymentIntents and SetupIntents answers 400.
    "payment_method_types_refused": VersionChange("2026-09-30.endive", CHG_ENDIVE),
    # Confirming without `return_url` while redirects are allowed answers 400. Older versions
    # accept it (Stripe's CLI fixtures confirm cards without one); the date follows the endive
    # change that left automatic payment methods as the only way to choose types.
    "return_url_required_with_redirects": VersionChange("2026-09-30.endive", CHG_ENDIVE),
}


def is_version(text: str) -> bool:
    """True for `2026-10-28.endive` and date-only versions such as `2023-08-16`."""
    return _VERSION.match(text) is not None


def parse(version: str) -> str:
    """`version` if it is shaped like a Stripe API version; 400 as Stripe answers otherwise."""
    if not is_version(version):
        raise invalid_request(f"Invalid Stripe API version: {version}")
    return version


def applies(version: str, change: str) -> bool:
    """True when a request at `version` gets the behaviour `change` names."""
    return version[:10] >= CHANGES[change].since[:10]
