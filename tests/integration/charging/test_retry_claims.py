"""Claiming due retries: SKIP LOCKED on PostgreSQL, so concurrent workers never share a row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import RecoveryCase
from processor.recovery import retries
from processor.recovery.retries import claim_due_retries, schedule_retry

LEASE = timedelta(minutes=10)


def _open_cases_with_retries(sessions: sessionmaker[Session], now: Any, count: int) -> None:
    with unit_of_work(sessions) as session:
        for i in range(count):
            case = RecoveryCase(
                payment_intent_id=f"pi_{i}",
                customer_id="cus_1",
                payment_method_id="pm_1",
                kind="payment_method_required",
                status="open",
                amount=500,
                currency="usd",
                failure_count=1,
                opened_at=now,
                last_failure_at=now,
                updated_at=now,
            )
            session.add(case)
            session.flush()
            schedule_retry(
                session,
                case_id=case.id,
                reference=f"R{i}",
                payment_intent_id=f"pi_{i}",
                payment_method_id="pm_1",
                attempt=1,
                due_at=now,
                now=now,
            )


def test_the_claim_selects_with_skip_locked_and_flips_in_one_statement() -> None:
    captured: list[str] = []

    class Recorder:
        def execute(self, statement: Any) -> Any:
            captured.append(str(statement.compile(dialect=postgresql.dialect())))

            class Empty:
                def mappings(self) -> list[object]:
                    return []

            return Empty()

    retries.claim_due_retries(
        Recorder(),
        worker_id="w",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        limit=5,
        lease=LEASE,  # type: ignore[arg-type]
    )
    (sql,) = captured
    assert sql.startswith("UPDATE charge_retries SET status=")
    assert "FOR UPDATE OF charge_retries SKIP LOCKED" in sql
    assert "RETURNING" in sql and "now()" not in sql.lower()


def test_a_claimed_retry_is_not_claimed_again_until_its_lease_runs_out(
    sessions: sessionmaker[Session], clock: Any
) -> None:
    _open_cases_with_retries(sessions, clock(), 1)
    with unit_of_work(sessions) as session:
        assert (
            len(claim_due_retries(session, worker_id="a", now=clock(), limit=5, lease=LEASE)) == 1
        )
    with unit_of_work(sessions) as session:
        assert claim_due_retries(session, worker_id="b", now=clock(), limit=5, lease=LEASE) == []
    later = clock() + LEASE
    with unit_of_work(sessions) as session:
        (again,) = claim_due_retries(session, worker_id="b", now=later, limit=5, lease=LEASE)
    assert again.idempotency_key == "charge:R0:retry:1"


def test_concurrent_workers_never_share_a_retry(
    engine: Engine, sessions: sessionmaker[Session], clock: Any
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED concurrency needs PostgreSQL")
    _open_cases_with_retries(sessions, clock(), 120)
    taken: dict[str, list[int]] = {f"w{i}": [] for i in range(4)}
    barrier = threading.Barrier(4)

    def work(worker: str) -> None:
        barrier.wait()
        while True:
            with unit_of_work(sessions) as session:
                claimed = claim_due_retries(
                    session, worker_id=worker, now=clock(), limit=7, lease=LEASE
                )
            if not claimed:
                return
            taken[worker].extend(c.id for c in claimed)

    threads = [threading.Thread(target=work, args=(w,)) for w in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [i for ids in taken.values() for i in ids]
    assert len(every) == len(set(every)) == 120
