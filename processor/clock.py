"""The one place that reads the wall clock, so tests can freeze or advance time.

Services take a `Clock` argument; the composition root hands them `utc_now`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def from_unix(seconds: int | float) -> datetime:
    """Stripe's unix timestamps as aware UTC datetimes."""
    return datetime.fromtimestamp(seconds, UTC)
