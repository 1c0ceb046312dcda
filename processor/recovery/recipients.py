"""Who a recovery email goes to, and in which language.

The address and locale come from our `customers` row; when we have none (a customer created
outside this service), from the Stripe Customer through the client passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import stripe

from processor.errors import DeliveryError
from processor.recovery.summary import CaseSummary

SUPPORTED_LOCALES = ("en", "ja")
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    locale: str


def choose_locale(preferences: Iterable[str | None]) -> str:
    """The first preference we have templates for ("ja-JP" -> "ja"), else English."""
    for preference in preferences:
        if not preference:
            continue
        language = preference.replace("_", "-").split("-")[0].strip().lower()
        if language in SUPPORTED_LOCALES:
            return language
    return DEFAULT_LOCALE


def resolve_recipient(case: CaseSummary, stripe_client: stripe.StripeClient) -> Recipient:
    """The case's customer as an addressee; `DeliveryError` if there is nobody to write to."""
    contact = case.contact
    if contact is not None and contact.email:
        return Recipient(
            email=contact.email,
            name=contact.name,
            locale=choose_locale([contact.preferred_locale]),
        )
    if not case.customer_id:
        raise DeliveryError("the case has no customer to write to", retryable=False)
    customer = _retrieve_stripe_customer(case.customer_id, stripe_client)
    email = getattr(customer, "email", None)
    if getattr(customer, "deleted", False) or not email:
        raise DeliveryError(f"customer {case.customer_id} has no email address", retryable=False)
    preferred = getattr(customer, "preferred_locales", None) or []
    return Recipient(
        email=str(email), name=getattr(customer, "name", None), locale=choose_locale(preferred)
    )


def _retrieve_stripe_customer(customer_id: str, client: stripe.StripeClient) -> object:
    try:
        return client.v1.customers.retrieve(customer_id)
    except stripe.InvalidRequestError as exc:
        raise DeliveryError(
            f"Stripe does not know customer {customer_id}", retryable=False
        ) from exc
    except stripe.StripeError as exc:
        # Network trouble, 429 and 5xx pass; so does an auth error once the key is fixed.
        raise DeliveryError(
            f"could not read customer {customer_id} from Stripe: {type(exc).__name__}",
            retryable=True,
        ) from exc
