"""The merge rules of a batch's changes: the same result whatever the order of the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processor.checkout.attempts import AttemptChange, merge_attempt_changes
from processor.checkout.methods import MethodChange, merge_method_rows
from processor.recovery.cases import PaymentFailure, merge_failures

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@st.composite
def failures(draw: st.DrawFn) -> list[PaymentFailure]:
    found = []
    for n in range(draw(st.integers(1, 6))):
        charge = draw(st.sampled_from([None, "ch_1", "ch_2", f"ch_n{n}"]))
        found.append(PaymentFailure(
            payment_intent_id=draw(st.sampled_from(["pi_a", "pi_b"])),
            customer_id="cus_1",
            payment_method_id=draw(st.sampled_from([None, "pm_1", "pm_2"])),
            amount=2000,
            currency="eur",
            code=draw(st.sampled_from(["card_declined", "authentication_required"])),
            decline_code=draw(st.sampled_from([None, "insufficient_funds"])),
            message=f"failure {n}",
            failed_at=START + timedelta(seconds=draw(st.integers(0, 3))),
            charge_id=charge,
        ))
    return found


def _merged_failures(found: list[PaymentFailure]) -> dict[str, Any]:
    return {
        intent: (m.newest.recency, m.newest.code, m.newest.message, m.opened_at,
                 m.failure_count, sorted(m.attempts))
        for intent, m in merge_failures(found).items()
    }


@given(data=st.data())
def test_failures_merge_the_same_in_any_order(data: st.DataObject) -> None:
    found = data.draw(failures())
    shuffled = data.draw(st.permutations(found))
    assert _merged_failures(shuffled) == _merged_failures(found)


def test_the_newest_failure_names_the_case_and_an_attempt_counts_once() -> None:
    first = PaymentFailure("pi_a", "cus_1", "pm_1", 2000, "eur", "card_declined",
                           "insufficient_funds", "first", START, "ch_1")
    again = PaymentFailure("pi_a", "cus_1", None, 2000, "eur", "card_declined",
                           "insufficient_funds", "first, from the 402", START, "ch_1")
    later = PaymentFailure("pi_a", "cus_1", None, 2000, "eur", "authentication_required",
                           None, "later", START + timedelta(hours=1), "ch_2")
    merged = merge_failures([later, first, again])["pi_a"]
    assert (merged.failure_count, merged.opened_at, merged.newest.message) == (2, START, "later")
    assert merged.newest.payment_method_id == "pm_1"  # kept from an older failure


STATES = [
    ("requires_action", None),
    ("requires_payment_method", "setup_intent_authentication_failure"),
    ("canceled", None),
    ("succeeded", None),
]


@st.composite
def attempt_changes(draw: st.DrawFn) -> list[AttemptChange]:
    changes = []
    for _ in range(draw(st.integers(1, 6))):
        status, error = draw(st.sampled_from(STATES))
        changes.append(AttemptChange(
            setup_intent_id=draw(st.sampled_from(["seti_a", "seti_b"])),
            customer_id="cus_1",
            confirmation_token_id=draw(st.sampled_from([None, "ctoken_1"])),
            status=status,
            payment_method_id="pm_1" if status == "succeeded" else None,
            error_code=error,
            decline_code=None,
            error_message=error,
            state_changed_at=START + timedelta(seconds=draw(st.integers(0, 2))),
            created_at=START,
        ))
    return changes


@given(data=st.data())
def test_setup_states_merge_the_same_in_any_order(data: st.DataObject) -> None:
    changes = data.draw(attempt_changes())
    shuffled = data.draw(st.permutations(changes))
    assert merge_attempt_changes(shuffled) == merge_attempt_changes(changes)


def test_within_one_second_the_later_stage_wins() -> None:
    base = {"customer_id": "cus_1", "confirmation_token_id": None, "decline_code": None,
            "state_changed_at": START, "created_at": START}
    done = AttemptChange("seti_a", status="succeeded", payment_method_id="pm_1",
                         error_code=None, error_message=None, **base)
    action = AttemptChange("seti_a", status="requires_action", payment_method_id=None,
                           error_code=None, error_message=None, **base)
    assert merge_attempt_changes([done, action])["seti_a"].status == "succeeded"
    assert merge_attempt_changes([action, done])["seti_a"].status == "succeeded"


@st.composite
def method_changes(draw: st.DrawFn) -> list[MethodChange]:
    details = {"type": "card", "card_brand": "visa", "card_last4": "4242"}
    changes = []
    for _ in range(draw(st.integers(1, 6))):
        at = START + timedelta(seconds=draw(st.integers(0, 3)))
        kind = draw(st.sampled_from(["attached", "detached", "named"]))
        changes.append(MethodChange(
            draw(st.sampled_from(["pm_a", "pm_b"])),
            details=details if kind != "named" else None,
            details_at=at if kind != "named" else None,
            customer_id="cus_1" if kind != "detached" else None,
            setup_intent_id="seti_a" if kind == "named" else None,
            attached_at=at if kind != "detached" else None,
            detached_at=at if kind == "detached" else None,
        ))
    return changes


@given(data=st.data())
def test_method_facts_merge_the_same_in_any_order(data: st.DataObject) -> None:
    changes = data.draw(method_changes())
    shuffled = data.draw(st.permutations(changes))
    rows = merge_method_rows(change.row(START) for change in changes)
    assert merge_method_rows(change.row(START) for change in shuffled) == rows
    for row in rows:
        detached = any(c.detached_at for c in changes if c.id == row["id"])
        assert row["status"] == ("detached" if detached else "active")
