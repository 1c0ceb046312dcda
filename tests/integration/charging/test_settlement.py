"""Charges settled by a batch's PaymentIntent outcomes: one statement for every kind, the same
rows as the kinds applied one at a time (failure, then success, then cancellation)."""

from __future__ import annotations

from datetime import timedelta
from itertools import combinations
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from processor.charging.settlement import IntentOutcome, Settlement, settle_charges
from processor.db.models import CHARGE_STATUSES, Charge, RecoveryCase
from processor.recovery.cases import PaymentFailure, record_payment_failure
from tests.fixtures.database import FakeClock

KINDS: tuple[Settlement, ...] = ("failed", "succeeded", "canceled")
BATCHES = [kinds for size in (1, 2, 3) for kinds in combinations(KINDS, size)]


def _settled_rows(
    sessions: sessionmaker[Session], clock: FakeClock, status: str, steps: list[list[IntentOutcome]]
) -> list[tuple[Any, ...]]:
    with sessions.begin() as session:
        session.execute(delete(Charge))
        for n, intent in enumerate((None, "pi_set")):
            session.add(Charge(
                reference=f"order-{n}", idempotency_key=f"charge:order-{n}", customer_id="cus_s",
                payment_method_id="pm_s", amount=2000, currency="usd", payment_intent_id=intent,
                status=status, attempt_count=1, created_at=clock(), updated_at=clock(),
            ))
    for outcomes in steps:
        with sessions.begin() as session:
            settle_charges(session.connection(), outcomes, now=clock())
    with sessions.begin() as session:
        return [tuple(row) for row in session.execute(
            select(Charge.reference, Charge.payment_intent_id, Charge.status, Charge.error_code,
                   Charge.decline_code, Charge.error_message, Charge.completed_at)
            .order_by(Charge.reference)
        )]


@pytest.mark.parametrize("status", CHARGE_STATUSES)
def test_a_batch_settles_every_kind_at_once_as_one_kind_after_another(
    sessions: sessionmaker[Session], clock: FakeClock, status: str
) -> None:
    with sessions.begin() as session:
        if not session.scalar(select(RecoveryCase.id).limit(1)):
            for intent in ("pi_ref", "pi_set"):
                record_payment_failure(session, PaymentFailure(
                    payment_intent_id=intent, customer_id="cus_s", payment_method_id="pm_s",
                    amount=2000, currency="usd", code="card_declined",
                    decline_code="insufficient_funds", message="Insufficient funds.",
                    failed_at=clock(),
                ), now=clock())
    for kinds in BATCHES:
        # Each kind twice, the later one first: the earliest of a kind counts.
        outcomes = [
            IntentOutcome(intent, reference, kind, clock() + timedelta(minutes=minutes))
            for intent, reference in (("pi_ref", "order-0"), ("pi_set", None))
            for kind in kinds
            for minutes in (2 + KINDS.index(kind), 1 + KINDS.index(kind))
        ]
        together = _settled_rows(sessions, clock, status, [outcomes])
        one_kind_at_a_time = _settled_rows(
            sessions, clock, status, [[o for o in outcomes if o.outcome == kind] for kind in kinds]
        )
        assert together == one_kind_at_a_time, (status, kinds)
