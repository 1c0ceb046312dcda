"""Backoff doubles from the first delay, is capped, and is jittered within [half, all]."""

from __future__ import annotations

from datetime import timedelta
from random import Random

from processor.recovery.outbox import RetryPolicy


def test_delays_double_within_jitter_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=10))
    rng = Random(7)
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (9, 600)]:
        for _ in range(50):
            delay = policy.delay_after(attempts, rng).total_seconds()
            assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy()
    rng = Random(1)
    delays = {policy.delay_after(3, rng) for _ in range(20)}
    assert len(delays) > 15
