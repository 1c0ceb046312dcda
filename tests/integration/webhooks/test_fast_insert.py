"""The event insert through the DB-API stores exactly what SQLAlchemy's own insert stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import StripeEvent
from processor.webhooks.fast_insert import COLUMNS, insert_event_row


def _row(event_id: str, **changes: Any) -> dict[str, Any]:
    row = {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "api_version": "2026-10-28.endive",
        "livemode": True,
        "object_id": "pi_1",
        "stripe_created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        "received_at": datetime(2026, 1, 2, 3, 4, 6, 123456, tzinfo=UTC),
        "last_received_at": datetime(2026, 1, 2, 3, 4, 6, 123456, tzinfo=UTC),
        "processed_at": None,
        "status": "ignored",
        "error": None,
        "delivery_count": 1,
        "attempt_count": 0,
        "secret_index": 1,
        "source": "webhook",
        "payload": '{"id": "evt", "text": "caf\u00e9"}',
    }
    row.update(changes)
    return row


def _stored(engine: Engine, event_id: str) -> tuple[Any, ...]:
    # As the database holds it (SQLite's datetime text included), not as the ORM reads it.
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                text(f"SELECT {', '.join(COLUMNS[1:])} FROM stripe_events WHERE id = :id"),
                {"id": event_id},
            ).one()
        )


def test_stores_what_sqlalchemy_stores(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert insert_event_row(session, _row("evt_raw")) is True
        session.execute(insert(StripeEvent.__table__).values(_row("evt_core")))
    assert _stored(engine, "evt_raw") == _stored(engine, "evt_core")


def test_an_existing_id_is_not_inserted_again(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert insert_event_row(session, _row("evt_twice")) is True
        assert insert_event_row(session, _row("evt_twice", status="processed")) is False
    with sessions() as session:
        assert session.get(StripeEvent, "evt_twice").status == "ignored"  # type: ignore[union-attr]


def test_driver_errors_surface_as_sqlalchemy_errors(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as session:
        insert_event_row(session, _row("evt_bad", type=None))
