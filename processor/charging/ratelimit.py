"""A client-side rate limit shared by every worker of a batch, so we stay under Stripe's limit.

Requests are spaced `1/rate` seconds apart; after a stall (a slow answer, a busy CPU) up to
`burst` requests may go at once to catch up. On top of that, no rolling window of a second
(plus a small margin for the jitter between our send and Stripe's count) ever holds more than
`rate` requests: catching up never earns a 429. Pacing uses a monotonic clock, not wall time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
# Requests sent 10 ms apart can reach Stripe closer together; 2% of a second absorbs that.
JITTER_MARGIN_SECONDS = 0.02


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
        self._per_window = max(1, math.floor(rate * WINDOW_SECONDS))
        self._recent: deque[float] = deque(maxlen=self._per_window)
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = monotonic()

    def reserve(self) -> float:
        """Take the next slot; the number of seconds to wait before using it."""
        with self._lock:
            now = self._monotonic()
            # Unused time banks at most `burst` slots, so a quiet spell cannot become a flood.
            slot = max(self._next_slot, now - (self.burst - 1) * self._interval)
            if len(self._recent) == self._per_window:
                # The window ending at `slot` must not hold `rate` requests already.
                slot = max(slot, self._recent[0] + WINDOW_SECONDS + JITTER_MARGIN_SECONDS)
            self._next_slot = slot + self._interval
            send_at = max(slot, now)  # a slot banked in the past is used now
            self._recent.append(send_at)
            return send_at - now

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
