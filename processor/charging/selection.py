"""Which saved method to charge: the one named, else the customer's most recent usable one.

Usable means Stripe still lists it for the customer (detached methods drop off that list), it is
a card or a SEPA Direct Debit mandate (what iDEAL and Bancontact leave behind), it is not marked
detached here, and a card has not expired. Stripe's list is the truth; our rows decide the order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

import stripe
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker
from stripe.params import CustomerPaymentMethodListParams

from processor.clock import from_unix
from processor.db.models import PaymentMethod
from processor.errors import InvalidInput, NotFound
from processor.stripe_gateway import value_of

CHARGEABLE_TYPES = ("card", "sepa_debit")
METHODS = PaymentMethod.__table__
_NAMED = select(METHODS).where(METHODS.c.id == bindparam("id"))
_PAGE_SIZE = 100
_MAX_PAGES = 10


@dataclass(frozen=True)
class SelectedMethod:
    id: str
    type: str | None


def card_expired(exp_year: int | None, exp_month: int | None, today: date) -> bool:
    """A card is good through the last day of its expiry month."""
    if exp_year is None or exp_month is None:
        return False
    return (exp_year, exp_month) < (today.year, today.month)


def select_payment_method(
    *,
    stripe_client: stripe.StripeClient,
    sessions: sessionmaker[Session],
    customer_id: str,
    now: datetime,
    call: Callable[[Callable[[], Any]], Any],
) -> SelectedMethod:
    """The customer's most recent usable method, or `InvalidInput` saying why there is none."""
    with sessions() as session:
        known = {
            row.id: row
            for row in session.execute(select(METHODS).where(METHODS.c.customer_id == customer_id))
        }
    listed = _list_customer_methods(stripe_client, customer_id, call)
    candidates = []
    for method in listed:
        row = known.get(method.id)
        if not _usable(method, now.date()) or (row is not None and row.status == "detached"):
            continue
        saved_at = (row.attached_at or row.created_at) if row is not None else None
        candidates.append((saved_at or from_unix(value_of(method, "created") or 0), method))
    if not candidates:
        raise InvalidInput(
            f"customer {customer_id} has no usable saved payment method "
            "(an unexpired card or a SEPA Direct Debit mandate)",
            field="payment_method",
            code="no_usable_payment_method",
        )
    _saved_at, chosen = max(candidates, key=lambda pair: pair[0])
    return SelectedMethod(id=chosen.id, type=value_of(chosen, "type"))


def check_named_method(
    session: Session, requested: str, customer_id: str, today: date
) -> SelectedMethod:
    """Refuse a named method we know to be unusable; Stripe checks the rest when charging."""
    row = session.execute(_NAMED, {"id": requested}).one_or_none()
    if row is None:
        return SelectedMethod(id=requested, type=None)
    if row.customer_id and row.customer_id != customer_id:
        raise InvalidInput(
            f"payment method {requested} belongs to another customer",
            field="payment_method",
            code="payment_method_not_owned",
        )
    if row.status == "detached":
        raise InvalidInput(
            f"payment method {requested} was detached and can no longer be charged",
            field="payment_method",
            code="payment_method_detached",
        )
    if row.type is not None and row.type not in CHARGEABLE_TYPES:
        raise InvalidInput(
            f"payment method {requested} is a {row.type}, which cannot be charged off-session",
            field="payment_method",
            code="payment_method_unusable",
        )
    if row.type == "card" and card_expired(row.card_exp_year, row.card_exp_month, today):
        raise InvalidInput(
            f"card {requested} expired in {row.card_exp_month:02d}/{row.card_exp_year}",
            field="payment_method",
            code="expired_card",
        )
    return SelectedMethod(id=requested, type=row.type)


def _usable(method: Any, today: date) -> bool:
    kind = value_of(method, "type")
    if kind not in CHARGEABLE_TYPES:
        return False
    if kind == "card":
        return not card_expired(
            value_of(method, "card", "exp_year"), value_of(method, "card", "exp_month"), today
        )
    return True


def _list_customer_methods(
    client: stripe.StripeClient, customer_id: str, call: Callable[[Callable[[], Any]], Any]
) -> list[Any]:
    methods: list[Any] = []
    params: CustomerPaymentMethodListParams = {"limit": _PAGE_SIZE}
    for _page in range(_MAX_PAGES):
        try:
            page = call(
                partial(client.v1.customers.payment_methods.list, customer_id, params.copy())
            )
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotFound(
                    f"customer {customer_id} does not exist in Stripe",
                    field="customer",
                    code="unknown_customer",
                ) from exc
            raise
        methods.extend(page.data)
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    return methods
