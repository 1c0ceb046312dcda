"""The weekly partitions of `stripe_events` on PostgreSQL.

The table is partitioned by range of `stripe_created_at` (Stripe's `created`), one partition
per week from Monday 00:00 UTC, named after its first day (`stripe_events_20261130`), so that
retention drops a whole week at once (processor.ops.retention) instead of deleting rows one
by one. Events outside every week, older ones and those whose week does not exist yet, go to
`stripe_events_default`.

Weeks are added ahead of time, each in a short transaction of its own: a standalone table
shaped like `stripe_events`, then `ATTACH PARTITION`, which does not block the receiver's
inserts (CREATE TABLE ... PARTITION OF would lock the whole table). Rows that landed in the
default partition for that week meanwhile move into it in the same transaction.

SQLite has no partitions: everything here is PostgreSQL's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

EVENTS_TABLE = "stripe_events"
DEFAULT_PARTITION = "stripe_events_default"
WEEK = timedelta(days=7)
WEEKS_AHEAD = 4  # besides the current week: a month without `processor prune` runs
# How long DDL waits for the receiver's transactions (each a few milliseconds) before it
# gives up; while it waits, new inserts queue behind it.
LOCK_TIMEOUT = "500ms"
LOCK_NOT_AVAILABLE = "55P03"  # what a statement that waited LOCK_TIMEOUT fails with
# What 0004 set on the table: payloads compressed and out of line from 128 bytes up. A
# storage parameter, so set on each partition (the columns' STORAGE and COMPRESSION are
# inherited from the parent).
PARTITION_OPTIONS = "WITH (toast_tuple_target = 128)"
_WEEK_NAME = re.compile(rf"^{EVENTS_TABLE}_(\d{{8}})$")
_PARTITIONS = text(
    """
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = CAST(:parent AS regclass)
    """
)


@dataclass(frozen=True, order=True)
class Week:
    """One weekly partition: events created from `start` (a Monday, UTC) until `end`."""

    start: datetime

    @classmethod
    def containing(cls, moment: datetime) -> Week:
        day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(day - timedelta(days=day.weekday()))

    @property
    def end(self) -> datetime:
        return self.start + WEEK

    @property
    def name(self) -> str:
        return f"{EVENTS_TABLE}_{self.start:%Y%m%d}"

    @property
    def bounds(self) -> str:
        """The partition bound clause, in UTC."""
        start, end = (f"'{day:%Y-%m-%d} 00:00:00+00'" for day in (self.start, self.end))
        return f"FOR VALUES FROM ({start}) TO ({end})"


def weekly_partitions(connection: Connection) -> list[Week]:
    """The weeks `stripe_events` has a partition for, oldest first."""
    weeks = []
    for (name,) in connection.execute(_PARTITIONS, {"parent": EVENTS_TABLE}):
        match = _WEEK_NAME.match(name)
        if match:
            weeks.append(Week(datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)))
    return sorted(weeks)


def is_partitioned(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def add_weeks_ahead(
    engine: Engine, *, now: datetime, weeks_ahead: int = WEEKS_AHEAD
) -> list[Week]:
    """Make sure the current week and the next `weeks_ahead` have partitions; the weeks added."""
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return []
        present = set(weekly_partitions(connection))
    current = Week.containing(now)
    wanted = [Week(current.start + WEEK * n) for n in range(weeks_ahead + 1)]
    added = []
    for week in wanted:
        if week in present:
            continue
        try:
            with engine.begin() as connection:
                add_week(connection, week)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            log.warning("%s not added: the default partition stayed busy", week.name)
            continue
        added.append(week)
    return added


def add_week(connection: Connection, week: Week) -> None:
    """Attach `week`'s partition, moving in what the default partition holds of it; the
    caller's transaction."""
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    # Until the commit, nothing more of this week may reach the default partition (the
    # attach would fail on it); inserts routed to the weekly partitions go on.
    connection.exec_driver_sql(f"LOCK TABLE {DEFAULT_PARTITION} IN EXCLUSIVE MODE")
    connection.exec_driver_sql(
        f"CREATE TABLE {week.name} (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS"
        f" INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION) {PARTITION_OPTIONS}"
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"  # noqa: S608 (our own names)
            " WHERE stripe_created_at >= :start AND stripe_created_at < :end RETURNING *)"
            f" INSERT INTO {week.name} SELECT * FROM moved"
        ),
        {"start": week.start, "end": week.end},
    )
    # Builds the partition's indexes (the table is empty or nearly) and checks the default
    # partition holds nothing of this week any more.
    connection.exec_driver_sql(
        f"ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION {week.name} {week.bounds}"
    )


def not_a_partition(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's `include_name` hook: the partitions are the table's storage, not tables of
    the models, so schema comparisons leave them out."""
    is_partition = name == DEFAULT_PARTITION or bool(name and _WEEK_NAME.match(name))
    return not (type_ == "table" and is_partition)
