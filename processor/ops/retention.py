"""Retention: drop raw event payloads past their age while keeping the rows dashboards count.

Payloads of failed events are kept whatever their age: they are what `replay` needs. Pruning
runs in small batches, each its own short transaction, oldest first along the partial index of
payloads still held (`ix_stripe_events_unpruned_received_at`), so it never holds locks or an
old snapshot for long and the webhook path keeps its pace while it runs. On PostgreSQL a
VACUUM afterwards returns the payloads' TOAST space for new events to reuse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.sql.dml import ReturningUpdate

from processor.db.models import StripeEvent, table_of

PRUNABLE_STATUSES = ("processed", "ignored")
BATCH_SIZE = 500
# Rest between batches: at least PAUSE, and REST_PER_WORK times as long as the batch took, so
# that prune keeps to about a fifth of one database backend however busy the database is (a
# slower batch means a longer rest). Measured: without the proportional rest, ingest fell by
# 45% while prune ran on a 2-core machine (docs/performance.md).
PAUSE = timedelta(milliseconds=50)
REST_PER_WORK = 4.0
EVENTS = table_of(StripeEvent)


@dataclass(frozen=True)
class PruneOutcome:
    pruned: int
    batches: int
    longest_batch_seconds: float


def prune_event_payloads(
    engine: Engine,
    *,
    older_than: timedelta,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    pause: timedelta = PAUSE,
    rest_per_work: float = REST_PER_WORK,
) -> PruneOutcome:
    """Null the payload of settled events received before `now - older_than`, `batch_size`
    rows per transaction with a rest between them (at least `pause`, and `rest_per_work` times
    the batch's own duration), then let PostgreSQL reuse the space."""
    cutoff = now - older_than
    cursor: datetime | None = None
    pruned = batches = 0
    longest = 0.0
    while True:
        started = time.perf_counter()
        with engine.begin() as connection:
            batch = connection.execute(_prune_batch(cutoff, cursor, batch_size, now))
            received = [row.received_at for row in batch]
        took = time.perf_counter() - started
        longest = max(longest, took)
        batches += 1
        pruned += len(received)
        if len(received) < batch_size:
            break
        # Rows at the cursor's instant are looked at again; pruned ones no longer match.
        cursor = max(received)
        time.sleep(max(pause.total_seconds(), took * rest_per_work))
    reclaim_space(engine)
    return PruneOutcome(pruned, batches, longest)


def _prune_batch(
    cutoff: datetime, cursor: datetime | None, limit: int, now: datetime
) -> ReturningUpdate[tuple[datetime]]:
    e = EVENTS.c
    oldest = (
        select(e.id)
        .where(
            e.payload.is_not(None),  # the partial index's condition, written as it is
            e.received_at < cutoff,
            e.status.in_(PRUNABLE_STATUSES),
        )
        .order_by(e.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if cursor is not None:
        oldest = oldest.where(e.received_at >= cursor)
    return (
        update(EVENTS)
        .where(e.id.in_(oldest.scalar_subquery()))
        .values(payload=None, payload_pruned_at=now)
        .returning(e.received_at)
    )


def reclaim_space(engine: Engine) -> None:
    """VACUUM stripe_events (and its TOAST) on PostgreSQL, outside any transaction; SQLite
    reuses freed pages by itself."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE) stripe_events")
