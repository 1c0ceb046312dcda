"""`charges` rows settled by what Stripe reports about their PaymentIntent (webhook events).

A charge row is found by its PaymentIntent id, or, before the charger has stored that id, by
the `reference` the charger puts in the PaymentIntent's metadata. The rule is order-free:
a succeeded charge stays succeeded; a failure shows the recovery case's newest failure; a
cancellation ends a charge that had not succeeded or errored.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Boolean, Connection, and_, case, or_, select, update

from processor.db.bulk import Write, row_source, rows_parameters
from processor.db.models import Charge, RecoveryCase, table_of

Settlement = Literal["failed", "succeeded", "canceled"]


@dataclass(frozen=True, slots=True)
class IntentOutcome:
    """What one event says happened to a PaymentIntent."""

    payment_intent_id: str
    reference: str | None
    outcome: Settlement
    at: datetime


_CHARGES = table_of(Charge)
_CASES = table_of(RecoveryCase)
SETTLEMENTS_PARAMETER = "settlements"
_TIME = _CHARGES.c.completed_at.type
# One row per PaymentIntent: what the batch says happened to it, each kind at its earliest.
# (Named apart from the table's columns: SQLite's statement takes them as parameters.)
_SETTLEMENT_COLUMNS = {
    "p_intent": _CHARGES.c.payment_intent_id.type,
    "p_reference": _CHARGES.c.reference.type,
    "p_failed": Boolean(),
    "p_succeeded_at": _TIME,
    "p_canceled_at": _TIME,
    "p_now": _TIME,
}


@functools.cache
def _settle(dialect: str, newest_failures: Any = _CASES) -> Any:
    """Every kind in one statement, as if a failure were applied first, then a success, then
    a cancellation: a success is final, a cancellation ends a charge that has not succeeded
    or errored (a failure of the same batch has turned an `error` into `failed` by then).

    A failure copies the case's newest failure, read from `newest_failures` (the table, once
    the batch's cases are written; or what `recovery.cases.newest_failures` gives a write
    that rides along with them)."""
    new = row_source(dialect, _SETTLEMENT_COLUMNS, SETTLEMENTS_PARAMETER)
    stored = _CHARGES.c
    intent, failed = new["p_intent"], new["p_failed"]
    succeeded = new["p_succeeded_at"].is_not(None)
    cancels = and_(
        new["p_canceled_at"].is_not(None),
        ~succeeded,
        stored.status != "succeeded",
        or_(failed, stored.status != "error"),
    )

    def from_case(name: str, case_name: str) -> Any:
        cases = newest_failures.c
        newest = select(cases[case_name]).where(cases.payment_intent_id == intent)
        return case((failed, newest.scalar_subquery()), else_=stored[name])

    return (
        update(_CHARGES)
        .where(
            or_(
                stored.payment_intent_id == intent,
                and_(stored.reference == new["p_reference"], stored.payment_intent_id.is_(None)),
            ),
            or_(failed, succeeded, cancels),
        )
        .values(
            payment_intent_id=intent,
            status=case(
                (or_(succeeded, stored.status == "succeeded"), "succeeded"), else_="failed"
            ),
            error_code=from_case("error_code", "error_code"),
            decline_code=from_case("decline_code", "decline_code"),
            error_message=from_case("error_message", "failure_message"),
            completed_at=case(
                (succeeded, new["p_succeeded_at"]),
                (cancels, new["p_canceled_at"]),
                else_=stored.completed_at,
            ),
            updated_at=new["p_now"],
        )
    )


def settlement_rows(outcomes: Iterable[IntentOutcome], *, now: datetime) -> list[dict[str, Any]]:
    """One row per PaymentIntent for the settlement, sorted by id; each kind keeps its earliest
    outcome's time."""
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        row = rows.setdefault(outcome.payment_intent_id, {
            "p_intent": outcome.payment_intent_id, "p_reference": None, "p_failed": False,
            "p_succeeded_at": None, "p_canceled_at": None, "p_now": now,
        })
        row["p_reference"] = row["p_reference"] or outcome.reference
        if outcome.outcome == "failed":
            row["p_failed"] = True
        else:
            held = row[f"p_{outcome.outcome}_at"]
            row[f"p_{outcome.outcome}_at"] = outcome.at if held is None else min(held, outcome.at)
    claimed: set[str | None] = set()
    for _intent, row in sorted(rows.items()):
        # A reference names one charge: the first PaymentIntent carrying it may claim it.
        if row["p_reference"] in claimed:
            row["p_reference"] = None
        claimed.add(row["p_reference"])
    return [row for _intent, row in sorted(rows.items())]


def settle_charges(
    connection: Connection, outcomes: Iterable[IntentOutcome], *, now: datetime
) -> None:
    """Apply a batch's PaymentIntent outcomes to their charge rows in one statement."""
    settlement = settlement_write(connection.dialect.name, outcomes, now=now)
    if settlement is not None:
        connection.execute(*settlement)


def settlement_write(
    dialect: str,
    outcomes: Iterable[IntentOutcome],
    *,
    now: datetime,
    newest_failures: Any = _CASES,
) -> Write | None:
    """The settlement with its parameters, for a caller that sends it with other writes (None
    if there is nothing to settle); see `_settle` for `newest_failures`."""
    rows = settlement_rows(outcomes, now=now)
    if not rows:
        return None
    statement = _settle(dialect, newest_failures)
    return statement, rows_parameters(dialect, rows, SETTLEMENTS_PARAMETER)
