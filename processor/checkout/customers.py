"""Sign-up: the Stripe Customer behind a browser session, created once and stored in `customers`.

A service: it never imports starlette or `processor.web`. The caller passes the Customer id
its session already names (if any); the same browser signing up again with the same email
gets that Customer back instead of a new one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session
from stripe.params import CustomerCreateParams

from processor.db.engine import unit_of_work
from processor.db.models import Customer, PaymentMethod
from processor.db.upsert import insert_ignoring_conflict
from processor.errors import InvalidInput, StripeUnavailable

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

# Deliberately plain: one @, a dot in the domain, no spaces. Stripe and the mail server judge
# deliverability; this only catches typing mistakes before a Customer is created.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class SignUp:
    """What a person typed to sign up, before validation."""

    email: str
    name: str
    locale: str | None = None


@dataclass(frozen=True)
class CustomerRecord:
    id: str
    email: str
    name: str | None
    preferred_locale: str | None


def validate_sign_up(raw: SignUp) -> SignUp:
    """Trim and check each field; raise `InvalidInput` naming the first bad one."""
    email = raw.email.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidInput("Enter a valid email address.", field="email", code="invalid_email")
    name = " ".join(raw.name.split())
    if not name:
        raise InvalidInput("Enter your name.", field="name", code="invalid_name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("That name is too long.", field="name", code="invalid_name")
    locale = (raw.locale or "").strip() or None
    if locale is not None and (len(locale) > 35 or not _LOCALE.match(locale)):
        raise InvalidInput("Unknown language tag.", field="locale", code="invalid_locale")
    return SignUp(email=email, name=name, locale=locale)


def sign_up(
    deps: Runtime, request: SignUp, *, session_customer_id: str | None = None
) -> CustomerRecord:
    """The Customer for this sign-up: the session's own if the email matches, else a new one."""
    details = validate_sign_up(request)
    if session_customer_id is not None:
        existing = find_customer(deps, session_customer_id)
        if existing is not None and existing.email.casefold() == details.email.casefold():
            return existing
    stripe_customer = _create_stripe_customer(deps.stripe, details)
    now = deps.clock()
    with unit_of_work(deps.sessions) as session:
        insert_ignoring_conflict(
            session,
            Customer,
            {
                "id": stripe_customer.id,
                "email": details.email,
                "name": details.name,
                "preferred_locale": details.locale,
                "created_at": now,
                "updated_at": now,
            },
            conflict_on=["id"],
        )
    return CustomerRecord(stripe_customer.id, details.email, details.name, details.locale)


def find_customer(deps: Runtime, customer_id: str) -> CustomerRecord | None:
    with deps.sessions() as session:
        row = session.get(Customer, customer_id)
        if row is None:
            return None
        return CustomerRecord(row.id, row.email, row.name, row.preferred_locale)


def customers_with_active_methods(
    session: Session,
) -> list[tuple[Customer, list[PaymentMethod]]]:
    """Every customer, newest first, with its active saved methods (the sandbox console)."""
    customers = session.scalars(select(Customer).order_by(Customer.created_at.desc())).all()
    methods = session.scalars(select(PaymentMethod).where(PaymentMethod.status == "active"))
    by_customer: dict[str, list[PaymentMethod]] = {}
    for method in methods:
        by_customer.setdefault(method.customer_id or "", []).append(method)
    return [(customer, by_customer.get(customer.id, [])) for customer in customers]


def _create_stripe_customer(stripe_client: stripe.StripeClient, details: SignUp) -> stripe.Customer:
    params: CustomerCreateParams = {"email": details.email, "name": details.name}
    if details.locale:
        params["preferred_locales"] = [details.locale]
    try:
        return stripe_client.v1.customers.create(params)
    except stripe.InvalidRequestError as exc:
        if exc.param in {"email", "name", "preferred_locales"}:
            field = "locale" if exc.param == "preferred_locales" else exc.param
            raise InvalidInput(f"Stripe did not accept the {field}.", field=field) from exc
        log.error("Stripe refused a customer create: %s", exc.code or type(exc).__name__)
        raise StripeUnavailable("We could not sign you up just now. Please try again.") from exc
    except stripe.StripeError as exc:
        log.warning("customer create failed: %s", type(exc).__name__)
        raise StripeUnavailable("We could not sign you up just now. Please try again.") from exc
