"""Rate limits kept in the database, so every worker and host counts against the same numbers.

Each limit counts in fixed windows and judges by a sliding estimate: the current window's
count plus the previous window's, weighted by how much of it still lies within one window of
now. That smooths the burst a fixed window allows at its edge, at the cost of two rows per
subject. Counters expire after two windows; `prune_expired` removes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from processor.config import RateLimit
from processor.db.engine import unit_of_work
from processor.db.models import RateLimitCounter, table_of
from processor.db.upsert import dialect_insert

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTERS = table_of(RateLimitCounter)


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go ahead and, if not, how long until it may."""

    allowed: bool
    retry_after: timedelta = timedelta(0)


def take(
    sessions: sessionmaker[Session], scope: str, subject: str, limit: RateLimit, now: datetime
) -> Verdict:
    """Count one request and judge it: refused requests count too, so hammering stays refused."""
    start = _window_start(now, limit.window)
    with unit_of_work(sessions) as session:
        current = _increment(session, scope, subject[:255], start, limit.window)
        previous = _count(session, scope, subject[:255], start - limit.window)
    return _judge(limit, now, start, current, previous)


def peek(
    sessions: sessionmaker[Session], scope: str, subject: str, limit: RateLimit, now: datetime
) -> Verdict:
    """Judge without counting: for limits on failures, counted with `count` once known."""
    start = _window_start(now, limit.window)
    with sessions() as session:
        current = _count(session, scope, subject[:255], start)
        previous = _count(session, scope, subject[:255], start - limit.window)
    # One more must still fit: the request about to be made may fail too.
    return _judge(limit, now, start, current + 1, previous)


def count(
    sessions: sessionmaker[Session], scope: str, subject: str, limit: RateLimit, now: datetime
) -> None:
    """Count one event (a failure) against `subject`."""
    with unit_of_work(sessions) as session:
        _increment(session, scope, subject[:255], _window_start(now, limit.window), limit.window)


def prune_expired(session: Session, now: datetime) -> int:
    """Delete counters no judgement reads any more; returns how many."""
    statement = delete(RateLimitCounter).where(RateLimitCounter.expires_at < now)
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def _window_start(now: datetime, window: timedelta) -> datetime:
    windows = math.floor((now - _EPOCH) / window)
    return _EPOCH + windows * window


def _increment(
    session: Session, scope: str, subject: str, start: datetime, window: timedelta
) -> int:
    dialect = session.get_bind().dialect.name
    insert = dialect_insert(dialect, _COUNTERS)
    statement = insert.values(
        scope=scope, subject=subject, window_start=start, count=1, expires_at=start + 2 * window
    ).on_conflict_do_update(
        index_elements=["scope", "subject", "window_start"],
        set_={"count": _COUNTERS.c["count"] + 1},
    )
    return int(session.execute(statement.returning(_COUNTERS.c["count"])).scalar_one())


def _count(session: Session, scope: str, subject: str, start: datetime) -> int:
    found = session.scalar(
        select(RateLimitCounter.count).where(
            RateLimitCounter.scope == scope,
            RateLimitCounter.subject == subject,
            RateLimitCounter.window_start == start,
        )
    )
    return found or 0


def _judge(
    limit: RateLimit, now: datetime, start: datetime, current: int, previous: int
) -> Verdict:
    still_in_view = 1 - (now - start) / limit.window
    if current + previous * still_in_view <= limit.count:
        return Verdict(True)
    # By the end of this window the previous one has left the view; if this one alone is
    # over, only its own end helps. A ceiling, not an exact moment: clients may retry then.
    wait = start + limit.window - now
    if current > limit.count:
        wait += limit.window
    return Verdict(False, wait)
