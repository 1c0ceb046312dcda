"""The outbox ledger on a real database: claims, leases, retries, dead rows, never a lost row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import Notification
from processor.recovery.outbox import (
    RetryPolicy,
    claim_due_notifications,
    mark_sent,
    mark_skipped,
    record_failure,
    release_claim,
)
from tests.integration.notifier.factories import notifications_of, only_notification, open_case

LEASE = timedelta(minutes=5)
POLICY = RetryPolicy(max_attempts=3, first_delay=timedelta(seconds=30))


def _claim(sessions: sessionmaker[Session], worker: str, now, limit: int = 10):  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as session:
        return claim_due_notifications(session, worker_id=worker, now=now, limit=limit, lease=LEASE)


def test_opening_a_case_queues_its_first_email(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    row = only_notification(sessions, case_id)
    assert (row.kind, row.sequence, row.dedup_key, row.status) == (
        "initial",
        0,
        f"case:{case_id}:0",
        "pending",
    )
    assert row.next_attempt_at == clock()


def test_claim_flips_due_rows_to_sending_with_a_lease(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    claimed = _claim(sessions, "w1", clock())
    assert [(c.case_id, c.kind, c.attempts) for c in claimed] == [(case_id, "initial", 1)]
    row = only_notification(sessions, case_id)
    assert (row.status, row.claimed_by, row.claimed_until, row.attempts) == (
        "sending",
        "w1",
        clock() + LEASE,
        1,
    )
    assert _claim(sessions, "w2", clock()) == []


def test_rows_not_yet_due_are_left_alone(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    open_case(sessions, now=clock())
    assert _claim(sessions, "w1", clock() - timedelta(seconds=1)) == []


def test_claim_respects_the_limit_and_due_order(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    first = open_case(sessions, now=clock() - timedelta(minutes=2))
    second = open_case(sessions, now=clock() - timedelta(minutes=1))
    open_case(sessions, now=clock())
    claimed = _claim(sessions, "w1", clock(), limit=2)
    assert sorted(c.case_id for c in claimed) == [first, second]


def test_sent_row_records_its_message(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    [claimed] = _claim(sessions, "w1", clock())
    clock.advance(seconds=2)
    with unit_of_work(sessions) as session:
        assert mark_sent(
            session,
            claimed,
            message_id="<m@x>",
            recipient="ada@example.com",
            locale="en",
            now=clock(),
        )
    row = only_notification(sessions, case_id)
    assert (row.status, row.message_id, row.recipient, row.locale, row.sent_at) == (
        "sent",
        "<m@x>",
        "ada@example.com",
        "en",
        clock(),
    )
    assert row.claimed_until is None and row.claimed_by == "w1"


def test_failure_is_retried_with_backoff_then_dead(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    rng = Random(3)
    outcomes = []
    for attempt in range(1, 4):
        [claimed] = _claim(sessions, "w1", clock())
        assert claimed.attempts == attempt
        with unit_of_work(sessions) as session:
            outcomes.append(
                record_failure(
                    session,
                    claimed,
                    error=f"boom {attempt}",
                    retryable=True,
                    policy=POLICY,
                    now=clock(),
                    rng=rng,
                )
            )
        row = only_notification(sessions, case_id)
        if outcomes[-1] == "retry":
            ceiling = 30 * 2 ** (attempt - 1)
            wait = (row.next_attempt_at - clock()).total_seconds()
            assert ceiling / 2 <= wait <= ceiling
            assert _claim(sessions, "w1", clock()) == []  # not due yet
            clock.now = row.next_attempt_at
    assert outcomes == ["retry", "retry", "dead"]
    row = only_notification(sessions, case_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "boom 3")
    clock.advance(days=30)
    assert _claim(sessions, "w1", clock()) == []


def test_permanent_failure_is_dead_at_once(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    [claimed] = _claim(sessions, "w1", clock())
    with unit_of_work(sessions) as session:
        outcome = record_failure(
            session,
            claimed,
            error="550 no such user",
            retryable=False,
            policy=POLICY,
            now=clock(),
            rng=Random(),
        )
    assert outcome == "dead"
    assert only_notification(sessions, case_id).status == "dead"


def test_expired_lease_is_claimed_again_and_the_old_holder_cannot_finish(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    [stale] = _claim(sessions, "crashed", clock())
    clock.advance(minutes=4, seconds=59)
    assert _claim(sessions, "w2", clock()) == []
    clock.advance(seconds=1)
    [fresh] = _claim(sessions, "w2", clock())
    assert (fresh.id, fresh.attempts, fresh.worker_id) == (stale.id, 2, "w2")
    with unit_of_work(sessions) as session:
        assert not mark_sent(
            session, stale, message_id="<m@x>", recipient="a@x.com", locale="en", now=clock()
        )
        assert mark_sent(
            session, fresh, message_id="<m@x>", recipient="a@x.com", locale="en", now=clock()
        )
    assert only_notification(sessions, case_id).claimed_by == "w2"


def test_release_gives_the_attempt_back(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    [claimed] = _claim(sessions, "w1", clock())
    with unit_of_work(sessions) as session:
        assert release_claim(session, claimed, now=clock())
    row = only_notification(sessions, case_id)
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)
    assert len(_claim(sessions, "w2", clock())) == 1


def test_skipped_row_is_kept(sessions, clock) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    [claimed] = _claim(sessions, "w1", clock())
    with unit_of_work(sessions) as session:
        assert mark_skipped(session, claimed, now=clock())
    assert [r.status for r in notifications_of(sessions, case_id)] == ["skipped"]


def test_claim_locks_with_skip_locked_on_postgresql() -> None:
    from sqlalchemy.dialects import postgresql

    from processor.recovery import outbox

    captured: list[str] = []

    class Capture:
        def execute(self, statement):  # type: ignore[no-untyped-def]
            captured.append(str(statement.compile(dialect=postgresql.dialect())))

            class Empty:
                def mappings(self) -> list[object]:
                    return []

            return Empty()

    outbox.claim_due_notifications(
        Capture(),  # type: ignore[arg-type]
        worker_id="w",
        now=datetime(2026, 11, 30, tzinfo=UTC),
        limit=5,
        lease=LEASE,
    )
    [sql] = captured
    assert "FOR UPDATE SKIP LOCKED" in sql
    assert sql.startswith("UPDATE notifications SET status=")
    assert "RETURNING" in sql and "now()" not in sql.lower()


def test_concurrent_claimers_never_share_a_row(engine: Engine, sessions, clock) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED concurrency needs PostgreSQL")
    from processor.recovery.outbox import queue_notification

    case_id = open_case(sessions, now=clock())
    with unit_of_work(sessions) as session:
        for i in range(1, 301):
            queue_notification(
                session,
                case_id=case_id,
                kind="reminder",
                sequence=i,
                dedup_key=f"test:{i}",
                due_at=clock(),
                now=clock(),
            )
    taken: dict[str, list[int]] = {f"w{i}": [] for i in range(4)}
    barrier = threading.Barrier(4)

    def work(worker: str) -> None:
        barrier.wait()
        while True:
            claimed = _claim(sessions, worker, clock(), limit=7)
            if not claimed:
                return
            taken[worker].extend(c.id for c in claimed)

    threads = [threading.Thread(target=work, args=(w,)) for w in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [i for ids in taken.values() for i in ids]
    assert len(every) == len(set(every)) == 301
    with sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "sending")
            )
            == 301
        )
