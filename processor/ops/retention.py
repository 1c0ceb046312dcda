"""Retention: delete settled events past their age; failed ones stay whatever their age.

The cutoff is the start of the week (Monday 00:00 UTC) that `older_than` reaches back to, so
every event Stripe created in that week or later is kept: at least `older_than`, at most a
week more. Failed events (and any not settled) are kept with their payloads: they are what
`replay` needs.

On PostgreSQL `stripe_events` is partitioned by week of `created` (processor.db.partitions):
a week wholly before the cutoff is detached and dropped in one short transaction, its
failed events moved to the default partition first, so its space goes back to the operating
system at once and nothing is rewritten. What is left past the cutoff outside the weekly
partitions (and everything on SQLite) is deleted in small batches, each its own short
transaction, oldest first along `stripe_created_at`, with a rest between them, so that the
receiver keeps its pace while it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy import Connection, Engine, column, delete, select, table, text, tuple_
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.dml import ReturningDelete

from processor.db.models import StripeEvent, table_of
from processor.db.partitions import (
    DEFAULT_PARTITION,
    EVENTS_TABLE,
    LOCK_NOT_AVAILABLE,
    LOCK_TIMEOUT,
    Week,
    add_weeks_ahead,
    is_partitioned,
    weekly_partitions,
)

log = logging.getLogger(__name__)

PRUNABLE_STATUSES = ("processed", "ignored")
# The shortest retention `processor prune` accepts: Stripe keeps events, resends them and lets
# `reconcile` fetch them for 30 days. An event deleted sooner could come back and be applied
# again, and a recovery case's outcome is settled by reading the intent's later events here.
MIN_RETENTION = timedelta(days=30)
BATCH_SIZE = 500
# Rest between batches: at least PAUSE, and REST_PER_WORK times as long as the batch took, so
# that prune keeps to about a fifth of one database backend however busy the database is (a
# slower batch means a longer rest). Measured: without the proportional rest, ingest fell by
# 45% while prune ran on a 2-core machine (docs/performance.md).
PAUSE = timedelta(milliseconds=50)
REST_PER_WORK = 4.0
# Dropping a week waits at most LOCK_TIMEOUT for the receiver's transactions; it tries this
# many times, resting between tries as between batches, before leaving the week to the next run.
DROP_ATTEMPTS = 5
EVENTS = table_of(StripeEvent)
T = TypeVar("T")
_PRUNABLE = ", ".join(f"'{status}'" for status in PRUNABLE_STATUSES)


@dataclass(frozen=True)
class PruneOutcome:
    cutoff: datetime  # events created before this were pruned
    deleted: int  # events deleted, in dropped weeks and in batches
    weeks_dropped: int
    transactions: int
    longest_transaction_seconds: float


def prune_events(
    engine: Engine,
    *,
    older_than: timedelta,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    pause: timedelta = PAUSE,
    rest_per_work: float = REST_PER_WORK,
) -> PruneOutcome:
    """Delete settled events created before the week `now - older_than` falls in: whole weeks
    first (PostgreSQL), then `batch_size` rows per transaction with a rest between them (at
    least `pause`, and `rest_per_work` times the batch's own duration)."""
    cutoff = Week.containing(now - older_than).start
    pacing = _Pacing(pause, rest_per_work)
    deleted = weeks_dropped = 0
    with engine.connect() as connection:
        partitioned = is_partitioned(connection)
        weeks = weekly_partitions(connection) if partitioned else []
    expired = [week for week in weeks if week.end <= cutoff]
    if partitioned:
        add_weeks_ahead(engine, now=now)
    for week in expired:
        for _attempt in range(DROP_ATTEMPTS):
            dropped = pacing.run(partial(_drop_week, engine, week))
            if dropped is not None:
                deleted += dropped
                weeks_dropped += 1
                break
        else:
            log.warning("prune: left %s for the next run: it stayed busy", week.name)
    # Weeks that could not be dropped wait for the next run rather than go row by row.
    rest = DEFAULT_PARTITION if partitioned else EVENTS_TABLE
    while True:
        count = pacing.run(partial(_delete_batch, engine, rest, cutoff, batch_size))
        deleted += count
        if count < batch_size:
            break
    if partitioned:
        _vacuum_default_partition(engine)
    return PruneOutcome(cutoff, deleted, weeks_dropped, pacing.transactions, pacing.longest)


class _Pacing:
    """Times each transaction and rests after it in proportion."""

    def __init__(self, pause: timedelta, rest_per_work: float) -> None:
        self._pause = pause.total_seconds()
        self._rest_per_work = rest_per_work
        self.transactions = 0
        self.longest = 0.0
        self._rest = 0.0

    def run(self, work: Callable[[], T]) -> T:
        time.sleep(self._rest)
        started = time.perf_counter()
        try:
            return work()
        finally:
            took = time.perf_counter() - started
            self.transactions += 1
            self.longest = max(self.longest, took)
            self._rest = max(self._pause, took * self._rest_per_work)


def _drop_week(engine: Engine, week: Week) -> int | None:
    """Detach and drop `week`'s partition, keeping its unsettled events (they move to the
    default partition); the events dropped, or None if the receiver's transactions kept the
    lock from it for LOCK_TIMEOUT (nothing changed)."""
    try:
        with engine.begin() as connection:
            return _detach_and_drop(connection, week)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        log.info("prune: %s was busy", week.name)
        return None


def _detach_and_drop(connection: Connection, week: Week) -> int:
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    connection.exec_driver_sql(f"ALTER TABLE {EVENTS_TABLE} DETACH PARTITION {week.name}")
    # No partition covers the week now: the kept rows go to the default partition. (The
    # names are the partition's own and the statuses constants.)
    connection.exec_driver_sql(
        f"INSERT INTO {EVENTS_TABLE} SELECT * FROM {week.name}"  # noqa: S608
        f" WHERE status NOT IN ({_PRUNABLE})"
    )
    dropped = connection.execute(
        text(f"SELECT count(*) FROM {week.name} WHERE status IN ({_PRUNABLE})")  # noqa: S608
    ).scalar_one()
    connection.exec_driver_sql(f"DROP TABLE {week.name}")
    return int(dropped)


def _delete_batch(engine: Engine, table_name: str, cutoff: datetime, limit: int) -> int:
    with engine.begin() as connection:
        return len(connection.execute(_delete_statement(table_name, cutoff, limit)).all())


def _delete_statement(
    table_name: str, cutoff: datetime, limit: int
) -> ReturningDelete[tuple[str]]:
    """The oldest `limit` settled events of `table_name` created before `cutoff`; rows the
    receiver holds are skipped, not waited for (the next run takes them)."""
    e = EVENTS.c
    shape = (e.id, e.stripe_created_at, e.status)
    events = table(table_name, *(column(c.name, c.type) for c in shape))
    t = events.c
    oldest = (
        select(t.id, t.stripe_created_at)
        .where(t.stripe_created_at < cutoff, t.status.in_(PRUNABLE_STATUSES))
        .order_by(t.stripe_created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return delete(events).where(tuple_(t.id, t.stripe_created_at).in_(oldest)).returning(t.id)


def _vacuum_default_partition(engine: Engine) -> None:
    """Let new stray events reuse what the batches freed (weekly partitions need none:
    dropping them gave their files back)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (ANALYZE) {DEFAULT_PARTITION}")

