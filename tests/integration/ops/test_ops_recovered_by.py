"""`ops_recovered_by` and /ops split recovered money into retry and customer, per currency."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from starlette.testclient import TestClient

from processor.app import create_app
from processor.db.engine import unit_of_work
from processor.db.models import RecoveryCase
from processor.recovery.retries import schedule_retry
from processor.runtime import build_runtime

TOKEN = "ops-token-for-tests-0123456789"


def _case(session: Any, index: int, status: str, amount: int, currency: str, now: Any) -> int:
    case = RecoveryCase(
        payment_intent_id=f"pi_{index}",
        kind="payment_method_required",
        status=status,
        amount=amount,
        currency=currency,
        opened_at=now,
        last_failure_at=now,
        updated_at=now,
        resolved_at=now + timedelta(days=1) if status == "recovered" else None,
    )
    session.add(case)
    session.flush()
    return case.id


def _retry(session: Any, case_id: int, attempt: int, status: str, now: Any) -> None:
    schedule_retry(
        session,
        case_id=case_id,
        reference=f"R{case_id}",
        payment_intent_id=f"pi_{case_id}",
        payment_method_id="pm_1",
        attempt=attempt,
        due_at=now,
        now=now,
    )
    session.execute(
        text("UPDATE charge_retries SET status = :status WHERE case_id = :case AND attempt = :n"),
        {"status": status, "case": case_id, "n": attempt},
    )


def test_recovered_money_is_split_by_who_won_it_back(
    make_settings, engine, sessions, clock
) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        by_retry = _case(session, 1, "recovered", 1999, "usd", now)
        _retry(session, by_retry, 1, "failed", now)
        _retry(session, by_retry, 2, "succeeded", now)
        after_failed_retry = _case(session, 2, "recovered", 500, "usd", now)
        _retry(session, after_failed_retry, 1, "failed", now)
        _case(session, 3, "recovered", 3000, "jpy", now)
        _case(session, 4, "open", 7000, "usd", now)
        # Opened before /ops's 14 days: in the view's totals, not on the page.
        _case(session, 5, "recovered", 4242, "eur", now - timedelta(days=20))

    with sessions() as session:
        rows = session.execute(
            text(
                "SELECT currency, recovered_by, recovered, recovered_amount FROM ops_recovered_by "
                "ORDER BY currency, recovered_by"
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("eur", "customer", 1, 4242),
        ("jpy", "customer", 1, 3000),
        ("usd", "customer", 1, 500),
        ("usd", "retry", 1, 1999),
    ]

    runtime = build_runtime(
        make_settings(ops_token=TOKEN, sandbox=False), engine=engine, clock=clock
    )
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:8000") as client:
        page = client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "Recovered: by automatic retry or by the customer" in page.text
    assert "$19.99" in page.text and "¥3,000" in page.text
    assert "42.42" not in page.text
