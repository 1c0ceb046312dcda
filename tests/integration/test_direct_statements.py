"""Statements run on the driver (processor.db.direct) store and read exactly what SQLAlchemy's own
execution stores and reads, and fall back to it where they need more."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    MultipleResultsFound,
    NoResultFound,
)
from sqlalchemy.orm import Session, sessionmaker

from processor.db import direct
from processor.db.models import Customer, StripeEvent
from processor.db.upsert import insert_ignoring_conflict

_EVENTS = StripeEvent.__table__
COLUMNS = tuple(column.name for column in _EVENTS.columns)
_BY_ID = select(_EVENTS.c.id, _EVENTS.c.stripe_created_at, _EVENTS.c.livemode).where(
    _EVENTS.c.id == bindparam("p_id")
)
_BY_OBJECT = select(_EVENTS.c.id).where(_EVENTS.c.object_id == bindparam("p_object"))
_COUNT = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("p_id"))
    .values(delivery_count=_EVENTS.c.delivery_count + 1)
    .returning(_EVENTS.c.delivery_count)
)
_OF_TYPES = select(_EVENTS.c.id).where(_EVENTS.c.type.in_(("a.b", "payment_intent.succeeded")))


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


def _insert(session: Session, event_id: str, **changes: Any) -> bool:
    return insert_ignoring_conflict(session, StripeEvent, _row(event_id, **changes), ["id"])


def test_stores_what_sqlalchemy_stores(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert _insert(session, "evt_direct") is True
        session.execute(insert(_EVENTS).values(_row("evt_core")))
    assert _stored(engine, "evt_direct") == _stored(engine, "evt_core")


def test_reads_what_sqlalchemy_reads(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _insert(session, "evt_read")
    with sessions() as session:
        expected = session.execute(_BY_ID, {"p_id": "evt_read"}).one()
        row = direct.execute(session, _BY_ID, {"p_id": "evt_read"}).one()
    assert tuple(row) == tuple(expected)
    assert row.stripe_created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row.stripe_created_at.tzinfo is not None
    assert row._asdict()["livemode"] is True


def test_an_existing_id_is_not_inserted_again(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert _insert(session, "evt_twice") is True
        assert _insert(session, "evt_twice", status="processed") is False
    with sessions() as session:
        assert session.get(StripeEvent, "evt_twice").status == "ignored"  # type: ignore[union-attr]


def test_returning_and_rowcount(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _insert(session, "evt_count")
        result = direct.execute(session, _COUNT, {"p_id": "evt_count"})
        assert (result.scalar_one(), result.rowcount) == (2, 1)
        missing = direct.execute(session, _COUNT, {"p_id": "evt_none"})
        assert (missing.scalar(), missing.rowcount) == (None, 0)


def test_one_raises_as_sqlalchemy_does(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _insert(session, "evt_a")
        _insert(session, "evt_b")
        with pytest.raises(NoResultFound):
            direct.execute(session, _BY_OBJECT, {"p_object": "pi_none"}).one()
        with pytest.raises(MultipleResultsFound):
            direct.execute(session, _BY_OBJECT, {"p_object": "pi_1"}).one()


def test_pending_orm_changes_are_flushed_first(sessions: sessionmaker[Session]) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    with sessions.begin() as session:
        session.add(Customer(id="cus_pending", email="a@example.com", created_at=now,
                             updated_at=now))
        found = direct.execute(
            session, text("SELECT id FROM customers WHERE id = :p_id"), {"p_id": "cus_pending"}
        )
        assert [row.id for row in found.all()] == ["cus_pending"]


def test_statements_needing_sqlalchemy_run_through_it(sessions: sessionmaker[Session]) -> None:
    # An expanding IN list is rendered per call by SQLAlchemy: the statement falls back.
    with sessions.begin() as session:
        _insert(session, "evt_in")
        assert direct._plan(_OF_TYPES, session.connection().dialect, ()) is None
        assert [row.id for row in direct.execute(session, _OF_TYPES, {}).all()] == ["evt_in"]


def test_driver_errors_surface_as_sqlalchemy_errors(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as session:
        _insert(session, "evt_bad", type=None)


def test_a_missing_parameter_is_refused_before_the_driver_sees_it(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, pytest.raises(InvalidRequestError, match="p_id"):
        direct.execute(session, _BY_ID, {})


def test_values_written_into_the_statement_are_sent_with_the_callers(
    sessions: sessionmaker[Session],
) -> None:
    mark = update(_EVENTS).where(_EVENTS.c.id == bindparam("p_id")).values(status="processed")
    with sessions.begin() as session:
        _insert(session, "evt_own")
        assert direct.execute(session, mark, {"p_id": "evt_own"}).rowcount == 1
        assert session.get(StripeEvent, "evt_own").status == "processed"  # type: ignore[union-attr]
