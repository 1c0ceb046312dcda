"""`payment_methods` rows: what the attached event, the setup intent's success, the checkout
endpoint and the background completion each know about a saved method, merged in any order.

The merge rule, in Python (`merge_method_changes`, within a batch) and in SQL (the upsert's
conflict clause, against the stored row): details and ids only ever fill what is missing;
times keep the earliest known; a detached method stays detached (a late `attached` fills its
details but never makes it active again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, func
from sqlalchemy.orm import Session

from processor.checkout.generated import generating_attempt
from processor.db.bulk import Write, insert_rows, rows_parameters
from processor.db.models import PaymentMethod, table_of
from processor.db.upsert import earliest


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
        "generated_from_attempt": generating_attempt(method),
    }


DETAIL_COLUMNS = tuple(method_details({}))
_FILLED_ONCE = (*DETAIL_COLUMNS, "customer_id", "setup_intent_id")
_EARLIEST = ("details_updated_at", "attached_at", "detached_at")


@dataclass(frozen=True, slots=True)
class MethodChange:
    """What one source knows about a PaymentMethod; None where it knows nothing."""

    id: str
    details: Mapping[str, Any] | None = None
    details_at: datetime | None = None
    customer_id: str | None = None
    setup_intent_id: str | None = None
    attached_at: datetime | None = None
    detached_at: datetime | None = None

    def row(self, now: datetime) -> dict[str, Any]:
        """The row this change would insert if the method were new."""
        details = self.details or {}
        known = {name: details.get(name) for name in DETAIL_COLUMNS}
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "setup_intent_id": self.setup_intent_id,
            **known,
            "status": "detached" if self.detached_at else "active",
            "attached_at": self.attached_at,
            "detached_at": self.detached_at,
            "details_updated_at": self.details_at if known["type"] is not None else None,
            "created_at": now,
            "updated_at": now,
        }


def _earlier(stored: datetime | None, new: datetime | None) -> datetime | None:
    if stored is None or new is None:
        return stored or new
    return min(stored, new)


def merge_method_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method, sorted by id: each later row fills what earlier ones left empty."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = merged.get(row["id"])
        if held is None:
            merged[row["id"]] = dict(row)
            continue
        for name in _FILLED_ONCE:
            if held[name] is None:
                held[name] = row[name]
        for name in _EARLIEST:
            held[name] = _earlier(held[name], row[name])
        if row["status"] == "detached":
            held["status"] = "detached"
    return [merged[key] for key in sorted(merged)]


_ROW_COLUMNS = tuple(MethodChange("").row(datetime.min.replace(tzinfo=UTC)))
_ROWS_PARAMETER = "method_rows"  # its own name: the upsert may be sent with other writes


def _upsert(dialect: str) -> Any:
    insert = insert_rows(dialect, table_of(PaymentMethod), _ROW_COLUMNS, parameter=_ROWS_PARAMETER)
    stored, new = table_of(PaymentMethod).c, insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["id"],
        set_={
            **{name: func.coalesce(stored[name], new[name]) for name in _FILLED_ONCE},
            **{name: earliest(stored[name], new[name]) for name in _EARLIEST},
            "status": case((new.detached_at.is_not(None), "detached"), else_=stored.status),
            "updated_at": new.updated_at,
        },
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in ("sqlite", "postgresql")}


def method_upsert(dialect: str, changes: Iterable[MethodChange], *, now: datetime) -> Write | None:
    """What a batch knows about saved methods, merged: one upsert into `payment_methods`, with
    its parameters (None if `changes` is empty)."""
    rows = merge_method_rows(change.row(now) for change in changes)
    if not rows:
        return None
    return _UPSERTS[dialect], rows_parameters(dialect, rows, _ROWS_PARAMETER)


def write_method_changes(
    connection: Connection, changes: Iterable[MethodChange], *, now: datetime
) -> None:
    """Merge what a batch knows about saved methods into `payment_methods`: one upsert."""
    upsert = method_upsert(connection.dialect.name, changes, now=now)
    if upsert is not None:
        connection.execute(*upsert)


def merge_method(session: Session, change: MethodChange, *, now: datetime) -> None:
    """Fold what one source (the checkout endpoint, the background completion) knows."""
    write_method_changes(session.connection(), [change], now=now)
