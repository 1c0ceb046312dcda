"""Fault injection for tests: added latency, a request rate limit, injected 500s, answers held
until the webhooks they caused are delivered."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field


def monotonic() -> float:
    """A monotonic clock freezegun does not replace (it patches `time.monotonic`)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclass
class Knobs:
    latency: float = 0.0
    requests_per_second: float | None = None
    error_share: float = 0.0
    error_should_retry: bool | None = True
    error_after_execution: bool = False
    answer_after_webhooks: bool = False
    _admitted: deque[float] = field(default_factory=deque)
    _random: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.requests_per_second = None
            self.error_share = 0.0
            self.error_should_retry = True
            self.error_after_execution = False
            self.answer_after_webhooks = False
            self._admitted.clear()

    def seed(self, seed: int | None) -> None:
        self._random.seed(seed)

    def admit(self) -> bool:
        """Sliding one-second window: False once `requests_per_second` were admitted in it."""
        limit = self.requests_per_second
        if limit is None:
            return True
        now = monotonic()
        with self._lock:
            while self._admitted and self._admitted[0] <= now - 1.0:
                self._admitted.popleft()
            if len(self._admitted) >= limit:
                return False
            self._admitted.append(now)
            return True

    def inject_error(self) -> bool:
        share = self.error_share
        return share > 0 and self._random.random() < share
