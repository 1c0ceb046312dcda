"""`payment_methods` rows from `payment_method.*` events (and from any full method snapshot).

Details only ever fill what is missing, so the attached event, the setup intent's success, the
checkout endpoint and the background completion can arrive in any order. A detached method
stays detached: a late `attached` fills its details but never makes it active again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, update
from sqlalchemy.orm import Session

from processor.db.models import PaymentMethod
from processor.db.types import UTCDateTime
from processor.db.upsert import insert_ignoring_conflict
from processor.webhooks.envelope import Event
from processor.webhooks.handlers import ref_id, required_id


def method_details(method: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a PaymentMethod snapshot fills; None where the snapshot says nothing."""
    card = method.get("card") or {}
    sepa = method.get("sepa_debit") or {}
    return {
        "type": method.get("type"),
        "card_brand": card.get("brand"),
        "card_last4": card.get("last4"),
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "card_funding": card.get("funding"),
        "card_country": card.get("country"),
        "sepa_last4": sepa.get("last4"),
        "sepa_bank_code": sepa.get("bank_code"),
        "sepa_country": sepa.get("country"),
        "allow_redisplay": method.get("allow_redisplay"),
    }


def _earliest(column: Any, value: datetime | None) -> Any:
    if value is None:
        return column
    bound = literal(value, UTCDateTime())
    return case((column.is_(None), bound), (column > bound, bound), else_=column)


def merge_method(
    session: Session,
    method_id: str,
    *,
    now: datetime,
    details: Mapping[str, Any] | None = None,
    details_at: datetime | None = None,
    customer_id: str | None = None,
    setup_intent_id: str | None = None,
    attached_at: datetime | None = None,
    detached_at: datetime | None = None,
) -> None:
    """Create the row or fold what one source knows into it; commutative by construction."""
    known = {k: v for k, v in (details or {}).items() if v is not None}
    has_details = known.get("type") is not None
    inserted = insert_ignoring_conflict(
        session,
        PaymentMethod,
        {
            "id": method_id,
            "customer_id": customer_id,
            "setup_intent_id": setup_intent_id,
            **known,
            "status": "detached" if detached_at else "active",
            "attached_at": attached_at,
            "detached_at": detached_at,
            "details_updated_at": details_at if has_details else None,
            "created_at": now,
            "updated_at": now,
        },
        conflict_on=["id"],
    )
    if inserted:
        return
    values: dict[str, Any] = {
        name: func.coalesce(getattr(PaymentMethod, name), value) for name, value in known.items()
    }
    if customer_id is not None:
        values["customer_id"] = func.coalesce(PaymentMethod.customer_id, customer_id)
    if setup_intent_id is not None:
        values["setup_intent_id"] = func.coalesce(PaymentMethod.setup_intent_id, setup_intent_id)
    if has_details:
        values["details_updated_at"] = _earliest(PaymentMethod.details_updated_at, details_at)
    if attached_at is not None:
        values["attached_at"] = _earliest(PaymentMethod.attached_at, attached_at)
    if detached_at is not None:
        values["status"] = "detached"
        values["detached_at"] = _earliest(PaymentMethod.detached_at, detached_at)
    session.execute(
        update(PaymentMethod).where(PaymentMethod.id == method_id).values(**values, updated_at=now)
    )


def on_payment_method_attached(session: Session, event: Event, now: datetime) -> None:
    method = event.object
    merge_method(
        session,
        required_id(method),
        now=now,
        details=method_details(method),
        details_at=event.created,
        customer_id=ref_id(method.get("customer")),
        attached_at=event.created,
    )


def on_payment_method_detached(session: Session, event: Event, now: datetime) -> None:
    # The snapshot no longer names the customer; the row keeps the one it had.
    method = event.object
    merge_method(
        session,
        required_id(method),
        now=now,
        details=method_details(method),
        details_at=event.created,
        detached_at=event.created,
    )
