"""Rows per status of the outbox, the charges and the retries, as `/metrics` exposes them.

The database, not any one process, knows these totals: charges are made by `processor charge`,
emails sent by notifier workers, on any host. Triggers (migration 0007) keep them in
`status_counts` in the same transaction as every change, as +1 / -1 rows, so reading them sums
a few rows instead of counting 300k charges at every scrape. `compact` folds those rows into
one per status so that the sum stays small; the scrape and `processor prune` call it.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from processor.db.models import (
    CHARGE_STATUSES,
    NOTIFICATION_STATUSES,
    RETRY_STATUSES,
    StatusCount,
    table_of,
)

# status_counts.table_name -> the name `/metrics` reads it under, and every status it can hold
# (each is exposed, 0 when no row has it, so that a series never vanishes).
COUNTED = {
    "notifications": ("notifications", NOTIFICATION_STATUSES),
    "charges": ("charges", CHARGE_STATUSES),
    "charge_retries": ("retries", RETRY_STATUSES),
}
# Fold once more rows than this have piled up: a scrape then sums at most about this many.
COMPACT_ABOVE = 1000
COUNTS = table_of(StatusCount)


def status_counts(session: Session) -> dict[str, dict[str, int]]:
    """{"notifications": {status: rows}, "charges": …, "retries": …} for every known status."""
    c = COUNTS.c
    counts = {name: dict.fromkeys(statuses, 0) for name, statuses in COUNTED.values()}
    summed = select(c.table_name, c.status, func.sum(c.count)).group_by(c.table_name, c.status)
    for table, status, rows in session.execute(summed):
        if table in COUNTED:
            counts[COUNTED[table][0]][status] = int(rows)
    return counts


def compact(session: Session, *, above: int = COMPACT_ABOVE) -> int:
    """Replace the rows of status_counts by their sums, one per (table, status, kind), when
    more than `above` have accumulated; the caller commits. Returns the rows folded.

    The rows deleted are exactly the rows summed (DELETE … RETURNING), so a change committed
    meanwhile is never lost; two compactions at once each fold what the other did not take.
    """
    c = COUNTS.c
    if (session.scalar(select(func.count()).select_from(COUNTS)) or 0) <= above:
        return 0
    folded = session.execute(delete(COUNTS).returning(c.table_name, c.status, c.kind, c.count))
    sums: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    rows = 0
    for table, status, kind, count in folded:
        sums[table, status, kind] += count
        rows += 1
    if sums:
        session.execute(
            insert(COUNTS),
            [
                {"table_name": table, "status": status, "kind": kind, "count": count}
                for (table, status, kind), count in sorted(sums.items())
            ],
        )
    return rows
