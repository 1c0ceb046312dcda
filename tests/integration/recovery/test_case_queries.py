"""What the batch's case statements read on PostgreSQL, whatever the statistics say."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.bulk import keys_parameters
from processor.db.models import StripeEvent
from processor.recovery import cases


def test_the_first_closing_event_is_found_along_the_objects_index(
    engine: Engine, sessions: sessionmaker[Session], clock
) -> None:  # type: ignore[no-untyped-def]
    """`min(stripe_created_at)` of an intent's closing events: on a table without statistics
    PostgreSQL would walk the `stripe_created_at` index until a row matched (every event of
    the week for each failed payment) instead of reading the intent's few events."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    now = clock()
    with sessions.begin() as session:
        session.add_all(
            StripeEvent(
                id=f"evt_{n}", type="payment_intent.succeeded", object_id=f"pi_{n}",
                stripe_created_at=now - timedelta(seconds=n), received_at=now,
                last_received_at=now, status="processed", delivery_count=1, attempt_count=1,
                source="webhook", payload="{}",
            )
            for n in range(500)
        )
    statement = cases._known_outcomes("postgresql")
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    parameters = keys_parameters(["pi_7"])
    sql = str(compiled).replace(":keys", "'" + parameters["keys"] + "'")
    with engine.connect() as connection:
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
        connection.rollback()
    assert "stripe_created_at_idx" not in plan, plan
    assert "object_id_idx" in plan, plan
