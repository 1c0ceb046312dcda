"""The ops views' windows in UTC, as each database holds `hour`, `day` and times: compared
like with like, a window reads an index range instead of converting every row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_hour(dialect: str, moment: datetime) -> Any:
    """`moment`'s UTC hour as the views' `hour` holds it. PostgreSQL's is a timestamp without
    zone: comparing it with a timestamptz would convert every row and miss the index."""
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return hour.isoformat(sep=" ") if dialect == "sqlite" else hour


def utc_day(dialect: str, moment: datetime) -> Any:
    """`moment`'s UTC date as the views' `day` holds it (ISO text on SQLite)."""
    day = moment.astimezone(UTC).date()
    return day.isoformat() if dialect == "sqlite" else day


def utc_midnight(dialect: str, moment: datetime) -> Any:
    """The start of `moment`'s UTC day, as `opened_at` and the like hold times on each database:
    `opened_at >= utc_midnight(…)` is `day >= utc_day(…)` read along an index on the time."""
    midnight = datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    return midnight.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else midnight
