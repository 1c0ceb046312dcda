"""Rate limits in the database: the sliding estimate, concurrent takers, pruning."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from processor.config import RateLimit
from processor.db import rate_limits
from processor.db.engine import unit_of_work
from processor.db.models import RateLimitCounter

HOURLY = RateLimit(10, timedelta(hours=1))
TOP_OF_HOUR = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _take(sessions: sessionmaker[Session], now: datetime, subject: str = "203.0.113.9") -> bool:
    return rate_limits.take(sessions, "signup_ip", subject, HOURLY, now).allowed


def test_a_burst_across_a_window_edge_is_still_one_window_s_worth(
    sessions: sessionmaker[Session],
) -> None:
    late = TOP_OF_HOUR - timedelta(minutes=1)
    assert all(_take(sessions, late) for _ in range(10))
    # Two minutes later a fixed window would start from zero; the estimate still sees them.
    early = TOP_OF_HOUR + timedelta(minutes=1)
    verdict = rate_limits.take(sessions, "signup_ip", "203.0.113.9", HOURLY, early)
    assert not verdict.allowed
    assert timedelta(0) < verdict.retry_after <= timedelta(hours=1)
    # Another subject and another scope are counted apart.
    assert _take(sessions, early, subject="198.51.100.4")
    assert rate_limits.take(sessions, "recovery_case", "203.0.113.9", HOURLY, early).allowed
    # Once the old window has slid out of view, the address may try again.
    assert _take(sessions, TOP_OF_HOUR + timedelta(minutes=59))


def test_peek_judges_without_counting_and_count_adds_one(
    sessions: sessionmaker[Session],
) -> None:
    limit = RateLimit(2, timedelta(days=1))
    now = TOP_OF_HOUR
    for _ in range(5):
        assert rate_limits.peek(sessions, "failed_setup_customer", "cus_1", limit, now).allowed
    rate_limits.count(sessions, "failed_setup_customer", "cus_1", limit, now)
    assert rate_limits.peek(sessions, "failed_setup_customer", "cus_1", limit, now).allowed
    rate_limits.count(sessions, "failed_setup_customer", "cus_1", limit, now)
    assert not rate_limits.peek(sessions, "failed_setup_customer", "cus_1", limit, now).allowed


def test_concurrent_takers_get_exactly_the_limit(sessions: sessionmaker[Session]) -> None:
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda _: _take(sessions, TOP_OF_HOUR), range(40)))
    assert verdicts.count(True) == 10


def test_expired_counters_are_pruned(sessions: sessionmaker[Session]) -> None:
    _take(sessions, TOP_OF_HOUR)
    _take(sessions, TOP_OF_HOUR + timedelta(hours=3))
    with unit_of_work(sessions) as session:
        removed = rate_limits.prune_expired(session, TOP_OF_HOUR + timedelta(hours=3))
        left = session.scalar(select(func.count()).select_from(RateLimitCounter))
    assert (removed, left) == (1, 1)
