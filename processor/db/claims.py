"""Claiming due rows under a lease: the one statement the outbox and the retry ledger share.

The caller's `due` query selects the ids to take (`FOR UPDATE SKIP LOCKED` on PostgreSQL);
one UPDATE flips exactly those rows and returns them, so concurrent workers never hold the
same row. Imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, Table, update
from sqlalchemy.orm import Session


def claim_rows(
    session: Session,
    table: Table,
    due: Select[tuple[int]],
    *,
    values: dict[str, Any],
    returning: Sequence[ColumnElement[Any]],
) -> list[RowMapping]:
    """Write `values` on the rows `due` selects; the `returning` columns of each, by id."""
    claimed = session.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(**values)
        .returning(table.c.id, *returning)
    ).mappings()
    return sorted(claimed, key=lambda row: int(row["id"]))
