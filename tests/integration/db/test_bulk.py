"""Writes sent together: one statement on PostgreSQL, every write done, names kept apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, func, select

from processor.charging.settlement import IntentOutcome, settlement_write
from processor.checkout.methods import MethodChange, method_upsert
from processor.db.bulk import execute_together, rows_parameters
from processor.db.models import Notification, PaymentMethod
from processor.recovery.cases import queue_first

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _notification(case_id: int) -> dict[str, object]:
    return {
        "case_id": case_id, "kind": "initial", "sequence": 0, "dedup_key": f"case:{case_id}:0",
        "status": "canceled", "attempts": 0, "next_attempt_at": NOW, "created_at": NOW,
        "updated_at": NOW,
    }


def test_writes_sent_together_are_all_done_in_one_statement_on_postgresql(
    engine: Engine,
) -> None:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    dialect = engine.dialect.name
    methods = method_upsert(dialect, [MethodChange("pm_together", customer_id="cus_1")], now=NOW)
    assert methods is not None
    settlement = settlement_write(
        dialect, [IntentOutcome("pi_none", None, "succeeded", NOW)], now=NOW
    )
    assert settlement is not None
    with engine.begin() as connection:
        connection.execute(select(1))
        before = len(statements)
        execute_together(connection, [methods, settlement])
        sent = statements[before:]
        stored = connection.execute(select(PaymentMethod.customer_id)).scalars().all()
    assert stored == ["cus_1"]
    assert len(sent) == (1 if dialect == "postgresql" else 2), sent


def test_writes_whose_parameters_share_a_name_are_refused_and_nothing_is_written(
    engine: Engine,
) -> None:
    dialect = engine.dialect.name
    if dialect != "postgresql":
        pytest.skip("elsewhere each write runs on its own, with its own parameters")
    first, second = queue_first(dialect, [_notification(1)]), queue_first(dialect, [])
    clashing = (second[0], rows_parameters(dialect, [_notification(2)]))
    with engine.begin() as connection, pytest.raises(ValueError, match="distinct names"):
        execute_together(connection, [first, clashing])
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Notification)) == 0
