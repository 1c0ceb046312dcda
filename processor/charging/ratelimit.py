"""A client-side token bucket shared by every worker of a batch, so we stay under Stripe's limit.

Each request takes the next free slot `1/rate` seconds after the previous one; up to `burst`
slots may be taken at once after a quiet spell. Pacing uses a monotonic clock, not wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`acquire()` blocks until the caller may send one request."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = monotonic()

    def reserve(self) -> float:
        """Take the next slot; the number of seconds to wait before using it."""
        with self._lock:
            now = self._monotonic()
            # Unused time banks at most `burst` slots, so a quiet spell cannot become a flood.
            earliest = now - (self.burst - 1) * self._interval
            slot = max(self._next_slot, earliest)
            self._next_slot = slot + self._interval
            return max(0.0, slot - now)

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
