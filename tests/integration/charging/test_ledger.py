"""The `charges` rows on a real database: one row per reference, outcomes never overwrite."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from processor.charging.ledger import (
    StripeAnswer,
    conflict_with,
    find_charges,
    outcome_from_row,
    record_answer,
    record_unresolved,
    reserve_charge,
)
from processor.charging.request import ChargeRequest
from processor.db.engine import unit_of_work
from processor.db.models import Charge


def request(reference: str = "inv-1", amount: int = 1999) -> ChargeRequest:
    return ChargeRequest("cus_A", amount, "jpy", reference=reference).validated()


def test_the_pending_row_carries_the_key_and_the_chosen_method(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    with unit_of_work(sessions) as session:
        row, inserted = reserve_charge(session, request(), "pm_1", now=clock())
    assert inserted
    assert (row.status, row.idempotency_key, row.payment_method_id) == (
        "pending",
        "charge:inv-1",
        "pm_1",
    )
    assert row.created_at == clock() and row.completed_at is None


def test_racing_reservations_of_one_reference_share_one_row(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    def reserve(_index: int) -> tuple[int, bool]:
        with unit_of_work(sessions) as session:
            row, inserted = reserve_charge(session, request(), "pm_1", now=clock())
            return row.id, inserted

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(reserve, range(16)))
    assert len({row_id for row_id, _inserted in results}) == 1
    assert sum(inserted for _row_id, inserted in results) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Charge)) == 1


def test_an_answer_settles_a_pending_row_once(sessions: sessionmaker[Session], clock: Any) -> None:
    with unit_of_work(sessions) as session:
        row, _ = reserve_charge(session, request(), "pm_1", now=clock())
    with unit_of_work(sessions) as session:
        stored = record_answer(
            session,
            row.id,
            StripeAnswer("succeeded", "pi_1"),
            attempts=2,
            now=clock.advance(seconds=1),
        )
    assert (stored.status, stored.payment_intent_id, stored.attempt_count) == (
        "succeeded",
        "pi_1",
        2,
    )
    assert stored.completed_at == clock()
    outcome = outcome_from_row(stored, resumed=True)
    assert (outcome.category, outcome.resumed) == ("succeeded", True)


def test_a_row_the_webhook_settled_first_keeps_the_webhooks_word(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    with unit_of_work(sessions) as session:
        row, _ = reserve_charge(session, request(), "pm_1", now=clock())
    # The SEPA debit failed and its webhook (matched by reference) landed before our answer.
    with unit_of_work(sessions) as session:
        session.execute(
            update(Charge)
            .where(Charge.id == row.id)
            .values(status="failed", error_code="insufficient_funds")
        )
    with unit_of_work(sessions) as session:
        stored = record_answer(
            session, row.id, StripeAnswer("processing", "pi_9"), attempts=1, now=clock()
        )
    assert (stored.status, stored.error_code, stored.payment_intent_id) == (
        "failed",
        "insufficient_funds",
        "pi_9",
    )


def test_an_unknown_outcome_stays_pending_with_the_reason(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    with unit_of_work(sessions) as session:
        row, _ = reserve_charge(session, request(), "pm_1", now=clock())
    with unit_of_work(sessions) as session:
        stored = record_unresolved(session, row.id, "APIError (503)", attempts=6, now=clock())
    assert (stored.status, stored.error_message, stored.attempt_count) == (
        "pending",
        "APIError (503)",
        6,
    )


def test_conflicts_name_what_differs(sessions: sessionmaker[Session], clock: Any) -> None:
    with unit_of_work(sessions) as session:
        row, _ = reserve_charge(session, request(), "pm_1", now=clock())
    assert conflict_with(row, request()) is None
    assert conflict_with(row, request(amount=2999)) is not None
    other_method = ChargeRequest(
        "cus_A", 1999, "jpy", payment_method_id="pm_2", reference="inv-1"
    ).validated()
    message = conflict_with(row, other_method)
    assert message is not None and "payment method pm_1" in message


def test_finding_many_references_at_once(sessions: sessionmaker[Session], clock: Any) -> None:
    with unit_of_work(sessions) as session:
        for index in range(600):
            reserve_charge(session, request(f"bulk-{index}"), "pm_1", now=clock())
    with sessions() as session:
        found = find_charges(session, [f"bulk-{index}" for index in range(0, 900, 3)])
    assert len(found) == 200
