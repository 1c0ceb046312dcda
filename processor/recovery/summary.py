"""What one recovery case looks like to the emails and the page: the case, the method that
failed and the customer's contact details as we stored them, read in one query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from processor.db.models import Customer, PaymentMethod, RecoveryCase


@dataclass(frozen=True)
class MethodOnFile:
    """The saved method the failed charge used, as far as webhooks told us about it."""

    type: str | None
    card_brand: str | None
    card_last4: str | None
    sepa_last4: str | None

    @property
    def last4(self) -> str | None:
        return self.card_last4 or self.sepa_last4


@dataclass(frozen=True)
class StoredContact:
    """The customer's row in `customers`, if we have one."""

    email: str | None
    name: str | None
    preferred_locale: str | None


@dataclass(frozen=True)
class CaseSummary:
    id: int
    payment_intent_id: str
    customer_id: str | None
    kind: str
    status: str
    amount: int
    currency: str
    error_code: str | None
    decline_code: str | None
    failure_message: str | None
    payment_method_id: str | None
    method: MethodOnFile | None
    contact: StoredContact | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


def load_case_summary(session: Session, case_id: int) -> CaseSummary | None:
    row = session.execute(
        select(RecoveryCase, PaymentMethod, Customer)
        .outerjoin(PaymentMethod, PaymentMethod.id == RecoveryCase.payment_method_id)
        .outerjoin(Customer, Customer.id == RecoveryCase.customer_id)
        .where(RecoveryCase.id == case_id)
    ).first()
    if row is None:
        return None
    case, method, customer = row
    return CaseSummary(
        id=case.id,
        payment_intent_id=case.payment_intent_id,
        customer_id=case.customer_id,
        kind=case.kind,
        status=case.status,
        amount=case.amount,
        currency=case.currency,
        error_code=case.error_code,
        decline_code=case.decline_code,
        failure_message=case.failure_message,
        payment_method_id=case.payment_method_id,
        method=None
        if method is None
        else MethodOnFile(
            type=method.type,
            card_brand=method.card_brand,
            card_last4=method.card_last4,
            sepa_last4=method.sepa_last4,
        ),
        contact=None
        if customer is None
        else StoredContact(
            email=customer.email, name=customer.name, preferred_locale=customer.preferred_locale
        ),
    )
