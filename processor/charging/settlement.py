"""`charges` rows settled by what Stripe reports about their PaymentIntent (webhook events).

A charge row is found by its PaymentIntent id, or, before the charger has stored that id, by
the `reference` the charger puts in the PaymentIntent's metadata. The rule is order-free:
a succeeded charge stays succeeded; a failure shows the recovery case's newest failure; a
cancellation ends a charge that had not succeeded or errored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, String, and_, bindparam, case, or_, select, update

from processor.db.models import Charge, RecoveryCase, table_of
from processor.db.types import UTCDateTime

Settlement = Literal["failed", "succeeded", "canceled"]
UNCANCELABLE_CHARGE_STATUSES = ("succeeded", "error")


@dataclass(frozen=True, slots=True)
class IntentOutcome:
    """What one event says happened to a PaymentIntent."""

    payment_intent_id: str
    reference: str | None
    outcome: Settlement
    at: datetime


_CHARGES = table_of(Charge)
_CASES = table_of(RecoveryCase)
_INTENT = bindparam("p_intent", type_=String())
_NOW = bindparam("p_now", type_=UTCDateTime())
_AT = bindparam("p_at", type_=UTCDateTime())
_OF_INTENT = or_(
    _CHARGES.c.payment_intent_id == _INTENT,
    and_(_CHARGES.c.reference == bindparam("p_reference"), _CHARGES.c.payment_intent_id.is_(None)),
)


def _from_case(column: str) -> Any:
    return select(_CASES.c[column]).where(_CASES.c.payment_intent_id == _INTENT).scalar_subquery()


# Run after the batch's recovery cases are written, so the case holds the newest failure.
_FAILED = (
    update(_CHARGES)
    .where(_OF_INTENT)
    .values(
        payment_intent_id=_INTENT,
        status=case((_CHARGES.c.status == "succeeded", "succeeded"), else_="failed"),
        error_code=_from_case("error_code"),
        decline_code=_from_case("decline_code"),
        error_message=_from_case("failure_message"),
        updated_at=_NOW,
    )
)
_SUCCEEDED = (
    update(_CHARGES)
    .where(_OF_INTENT)
    .values(payment_intent_id=_INTENT, status="succeeded", completed_at=_AT, updated_at=_NOW)
)
_CANCELED = (
    update(_CHARGES)
    .where(_OF_INTENT, _CHARGES.c.status.not_in(UNCANCELABLE_CHARGE_STATUSES))
    .values(payment_intent_id=_INTENT, status="failed", completed_at=_AT, updated_at=_NOW)
)
_STATEMENTS = {"failed": _FAILED, "succeeded": _SUCCEEDED, "canceled": _CANCELED}


def settle_charges(
    connection: Connection, outcomes: Iterable[IntentOutcome], *, now: datetime
) -> None:
    """Apply a batch's PaymentIntent outcomes to their charge rows: one executemany per kind."""
    earliest: dict[tuple[str, str], IntentOutcome] = {}
    for outcome in outcomes:
        key = (outcome.outcome, outcome.payment_intent_id)
        held = earliest.get(key)
        if held is None or outcome.at < held.at:
            earliest[key] = outcome
    for kind, statement in _STATEMENTS.items():
        parameters = [
            {
                "p_intent": outcome.payment_intent_id,
                "p_reference": outcome.reference,
                "p_at": outcome.at,
                "p_now": now,
            }
            for (outcome_kind, _intent), outcome in sorted(earliest.items())
            if outcome_kind == kind
        ]
        if parameters:
            connection.execute(statement, parameters)
