"""What a recovery case looks like to the emails and the page: the case, the method that
failed and the customer's contact details as we stored them, read in one query (for one case
or a whole batch of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
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


_CASES = RecoveryCase.__table__.c
_METHODS = PaymentMethod.__table__.c
_CUSTOMERS = Customer.__table__.c
_SUMMARY_COLUMNS = (
    _CASES.id,
    _CASES.payment_intent_id,
    _CASES.customer_id,
    _CASES.kind,
    _CASES.status,
    _CASES.amount,
    _CASES.currency,
    _CASES.error_code,
    _CASES.decline_code,
    _CASES.failure_message,
    _CASES.payment_method_id,
    _METHODS.id.label("method_id"),
    _METHODS.type.label("method_type"),
    _METHODS.card_brand,
    _METHODS.card_last4,
    _METHODS.sepa_last4,
    _CUSTOMERS.id.label("contact_id"),
    _CUSTOMERS.email,
    _CUSTOMERS.name,
    _CUSTOMERS.preferred_locale,
)


def load_case_summaries(session: Session, case_ids: Iterable[int]) -> dict[int, CaseSummary]:
    """Several cases in one query (the notifier reads a whole batch at once)."""
    ids = list(case_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(*_SUMMARY_COLUMNS)
        .select_from(RecoveryCase.__table__)
        .outerjoin(PaymentMethod.__table__, _METHODS.id == _CASES.payment_method_id)
        .outerjoin(Customer.__table__, _CUSTOMERS.id == _CASES.customer_id)
        .where(_CASES.id.in_(ids))
    )
    return {row.id: _summary(row) for row in rows}


def load_case_summary(session: Session, case_id: int) -> CaseSummary | None:
    return load_case_summaries(session, [case_id]).get(case_id)


def _summary(row: Row[*tuple[Any, ...]]) -> CaseSummary:
    return CaseSummary(
        id=row.id,
        payment_intent_id=row.payment_intent_id,
        customer_id=row.customer_id,
        kind=row.kind,
        status=row.status,
        amount=row.amount,
        currency=row.currency,
        error_code=row.error_code,
        decline_code=row.decline_code,
        failure_message=row.failure_message,
        payment_method_id=row.payment_method_id,
        method=_method_on_file(row),
        contact=_contact(row),
    )


def _method_on_file(row: Row[*tuple[Any, ...]]) -> MethodOnFile | None:
    """The saved method the case names, if we have stored it (the outer join found it)."""
    if row.method_id is None:
        return None
    return MethodOnFile(
        type=row.method_type,
        card_brand=row.card_brand,
        card_last4=row.card_last4,
        sepa_last4=row.sepa_last4,
    )


def _contact(row: Row[*tuple[Any, ...]]) -> StoredContact | None:
    """Whom to write to, if the customer is stored (the outer join found them)."""
    if row.contact_id is None:
        return None
    return StoredContact(email=row.email, name=row.name, preferred_locale=row.preferred_locale)
