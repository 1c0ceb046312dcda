"""Writes sent together: one statement on PostgreSQL, every write done, names kept apart."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select

from processor.charging.settlement import IntentOutcome, settlement_write
from processor.checkout.methods import MethodChange, method_upsert
from processor.db.bulk import execute_together, insert_rows, rows_parameters
from processor.db.engine import make_async_engine
from processor.db.models import PaymentMethod, StripeEvent, table_of
from processor.webhooks.apply import Delivery, event_row
from processor.webhooks.envelope import parse_event
from tests.fixtures.events import body_of, payment_intent, stripe_event

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


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
    first = method_upsert(dialect, [MethodChange("pm_first", customer_id="cus_1")], now=NOW)
    clashing = method_upsert(dialect, [MethodChange("pm_second", customer_id="cus_2")], now=NOW)
    assert first is not None and clashing is not None
    with engine.begin() as connection, pytest.raises(ValueError, match="distinct names"):
        execute_together(connection, [first, clashing])
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(PaymentMethod)) == 0


# Text that JSON would escape, and text it would not: each must come back as it went.
AWKWARD_TEXTS = [
    '{"quote": "\\"", "backslash": "\\\\", "unicode": "\\u00e9"}',
    "é € 😀",
    "",
    "line\nbreak\ttab\r",
    "NULL",
    None,
]


def _event_rows(count: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        document = stripe_event("payment_intent.succeeded", payment_intent(f"pi_text{n}"),
                                event_id=f"evt_text{n:03d}")
        row = event_row(Delivery(parse_event(body_of(document))), now=NOW, status="ignored",
                        error=None)
        rows.append({**row, "payload": AWKWARD_TEXTS[n % len(AWKWARD_TEXTS)]})
    return rows


def _insert_with_text_columns(connection: Connection, rows: list[dict[str, Any]]) -> None:
    table = table_of(StripeEvent)
    columns = list(rows[0])
    statement = insert_rows(connection.dialect.name, table, columns, text_columns=["payload"])
    connection.execute(
        statement, rows_parameters(connection.dialect.name, rows, text_columns=["payload"])
    )


def test_text_columns_travel_beside_the_document_each_with_its_own_row(engine: Engine) -> None:
    rows = _event_rows(40)
    with engine.begin() as connection:
        _insert_with_text_columns(connection, rows)
    with engine.connect() as connection:
        stored = dict(connection.execute(select(StripeEvent.id, StripeEvent.payload)).all())
    assert stored == {row["id"]: row["payload"] for row in rows}


def test_text_columns_travel_the_same_through_asyncpg(engine: Engine) -> None:
    """The webhook batches' driver sends the arrays in binary."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the async engine is PostgreSQL's")
    rows = _event_rows(40)

    async def insert() -> None:
        async_engine = make_async_engine(engine.url, application_name="processor test")
        try:
            async with async_engine.begin() as connection:
                await connection.run_sync(_insert_with_text_columns, rows)
        finally:
            await async_engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own, as a web worker's
        pool.submit(asyncio.run, insert()).result(timeout=30)
    with engine.connect() as connection:
        stored = dict(connection.execute(select(StripeEvent.id, StripeEvent.payload)).all())
    assert stored == {row["id"]: row["payload"] for row in rows}
