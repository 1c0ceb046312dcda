"""`payment_methods` rows from `payment_method.*` events (and from any full method snapshot).

Details only ever fill what is missing, so the attached event, the setup intent's success, the
checkout endpoint and the background completion can arrive in any order. A detached method
stays detached: a late `attached` fills its details but never makes it active again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, update
from sqlalchemy.orm import Session

from processor.db import direct
from processor.db.models import PaymentMethod
from processor.db.types import UTCDateTime
from processor.db.upsert import insert_ignoring_conflict
from processor.stripe_fields import ref_id, required_id
from processor.webhooks.envelope import Event


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


DETAIL_COLUMNS = tuple(method_details({}))
_METHODS = PaymentMethod.__table__


def _earliest(column: Any, value: Any) -> Any:
    return case(
        (value.is_(None), column), (column.is_(None), value), (column > value, value),
        else_=column,
    )


def _merge_statement() -> Any:
    # One static statement (values arrive as parameters), so SQLAlchemy compiles it once.
    # NULL parameters leave the column as it is; details only ever fill what is missing.
    columns = _METHODS.c
    param = {name: bindparam(f"p_{name}", type_=columns[name].type) for name in (
        *DETAIL_COLUMNS, "customer_id", "setup_intent_id", "updated_at"
    )}
    details_at = bindparam("p_details_updated_at", type_=UTCDateTime())
    attached_at = bindparam("p_attached_at", type_=UTCDateTime())
    detached_at = bindparam("p_detached_at", type_=UTCDateTime())
    return (
        update(_METHODS)
        .where(columns.id == bindparam("p_id"))
        .values(
            {
                **{name: func.coalesce(columns[name], param[name]) for name in DETAIL_COLUMNS},
                "customer_id": func.coalesce(columns.customer_id, param["customer_id"]),
                "setup_intent_id": func.coalesce(columns.setup_intent_id, param["setup_intent_id"]),
                "details_updated_at": _earliest(columns.details_updated_at, details_at),
                "attached_at": _earliest(columns.attached_at, attached_at),
                "status": case((detached_at.is_not(None), "detached"), else_=columns.status),
                "detached_at": _earliest(columns.detached_at, detached_at),
                "updated_at": param["updated_at"],
            }
        )
    )


_MERGE = _merge_statement()


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
    known = {name: (details or {}).get(name) for name in DETAIL_COLUMNS}
    has_details = known["type"] is not None
    row = {
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
    }
    if insert_ignoring_conflict(session, PaymentMethod, row, conflict_on=["id"]):
        return
    parameters = {f"p_{name}": value for name, value in row.items() if name != "created_at"}
    direct.execute(session, _MERGE, parameters)


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
