"""Fixtures for webhook tests against the real test database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from processor.webhooks.apply import Outcome
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import record_event
from tests.fixtures.database import FakeClock
from tests.fixtures.events import body_of

Deliver = Callable[[dict[str, Any]], Outcome]


@pytest.fixture
def deliver(engine: Engine, clock: FakeClock) -> Deliver:
    """Record one event as the receiver does after verification."""

    def deliver(document: dict[str, Any]) -> Outcome:
        return record_event(engine, parse_event(body_of(document)), now=clock(), secret_index=0)

    return deliver


@pytest.fixture
def one(sessions: sessionmaker[Session]) -> Callable[..., Any]:
    """The single row of `model` matching `where` (keyword equality), detached from its session."""

    def one(model: type[Any], **where: Any) -> Any:
        with sessions() as session:
            row = session.scalars(select(model).filter_by(**where)).one()
            session.expunge(row)
            return row

    return one


@pytest.fixture
def count(sessions: sessionmaker[Session]) -> Callable[..., int]:
    def count(model: type[Any], **where: Any) -> int:
        with sessions() as session:
            return len(session.scalars(select(model).filter_by(**where)).all())

    return count
