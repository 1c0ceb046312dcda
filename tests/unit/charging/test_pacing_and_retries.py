"""The client-side rate limit and the retry rules, driven by a fake monotonic clock."""

from __future__ import annotations

import random
import threading
import time

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.charging.ratelimit import JITTER_MARGIN_SECONDS, TokenBucket
from processor.charging.retry import (
    AttemptCounter,
    RetryPolicy,
    call_with_retries,
    is_retryable,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_are_spaced_one_interval_apart() -> None:
    fake = FakeTime()
    bucket = TokenBucket(20, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(20):
        bucket.acquire()
    # The first goes at once; nineteen more need nineteen intervals of 50 ms.
    assert fake.now - 100.0 == pytest.approx(0.95)
    # The 21st waits until the first has left the rolling second, with the jitter margin.
    bucket.acquire()
    assert fake.now - 100.0 == pytest.approx(1.0 + JITTER_MARGIN_SECONDS)


def test_a_quiet_spell_banks_at_most_the_burst() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10, burst=3, monotonic=fake.monotonic, sleep=fake.sleep)
    fake.now += 60  # a minute of silence
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.2])


def test_threads_share_one_limit() -> None:
    bucket = TokenBucket(200)
    started = time.monotonic()

    def work() -> None:
        for _ in range(10):
            bucket.acquire()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    elapsed = time.monotonic() - started
    # 80 requests at 200/s: 79 intervals of 5 ms, whatever the number of threads.
    assert 0.38 <= elapsed < 0.8


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (10, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst=burst)


def api_error(status: int, **headers: str) -> stripe.APIError:
    return stripe.APIError("boom", http_status=status, headers=headers)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (stripe.RateLimitError("slow down", http_status=429), True),
        (stripe.APIConnectionError("reset by peer"), True),
        (api_error(500), True),
        (api_error(503), True),
        (api_error(409), True),
        (api_error(500, **{"Stripe-Should-Retry": "false"}), False),
        (stripe.InvalidRequestError("bad", param="amount", http_status=400), False),
        (stripe.CardError("declined", param=None, code="card_declined", http_status=402), False),
        (stripe.IdempotencyError("other params", http_status=400), False),
        (stripe.AuthenticationError("bad key", http_status=401), False),
    ],
)
def test_what_is_worth_retrying(error: stripe.StripeError, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def flaky(failures: list[Exception], answer: str = "ok"):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def request() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return answer

    return request, calls


def test_transient_errors_are_retried_until_an_answer() -> None:
    request, calls = flaky([stripe.RateLimitError("429", http_status=429), api_error(500)])
    slept: list[float] = []
    counter = AttemptCounter()
    paced: list[int] = []
    result = call_with_retries(
        request,
        policy=RetryPolicy(attempts=5, base_delay=1.0, max_delay=10.0),
        before_request=lambda: paced.append(1),
        sleep=slept.append,
        counter=counter,
    )
    assert result == "ok"
    assert len(calls) == counter.sent == len(paced) == 3
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0  # backoff doubles, with jitter
    assert counter.last_error is not None and "APIError (500)" in counter.last_error


def test_retries_stop_at_the_policy_and_raise_the_last_error() -> None:
    request, calls = flaky([api_error(502) for _ in range(10)])
    with pytest.raises(stripe.APIError):
        call_with_retries(request, policy=RetryPolicy(attempts=3), sleep=lambda _s: None)
    assert len(calls) == 3


def test_final_errors_are_not_retried() -> None:
    request, calls = flaky(
        [stripe.CardError("no", param=None, code="card_declined", http_status=402)]
    )
    with pytest.raises(stripe.CardError):
        call_with_retries(request, policy=RetryPolicy(attempts=5), sleep=lambda _s: None)
    assert len(calls) == 1


def test_a_retry_after_hint_is_honoured_within_the_cap() -> None:
    request, _calls = flaky(
        [stripe.RateLimitError("429", http_status=429, headers={"Retry-After": "3"})]
    )
    slept: list[float] = []
    call_with_retries(
        request, policy=RetryPolicy(base_delay=0.1, max_delay=2.0), sleep=slept.append
    )
    assert slept == [2.0]


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(7)
    delays = [policy.delay(attempt, rng) for attempt in range(1, 10)]
    assert all(delay <= 4.0 for delay in delays)
    assert delays[-1] >= 2.0  # the cap, halved at worst by jitter
    assert len({round(delay, 6) for delay in delays}) == len(delays)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=2, max_value=150),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.3), min_size=1, max_size=400),
)
def test_no_rolling_second_ever_holds_more_than_the_rate(
    rate: int, burst: int, gaps: list[float]
) -> None:
    """Whatever the stalls between callers, catching up never breaks Stripe's per-second count."""
    fake = FakeTime()
    bucket = TokenBucket(rate, burst=burst, monotonic=fake.monotonic, sleep=fake.sleep)
    sends = []
    for gap in gaps:
        fake.now += gap
        sends.append(fake.now + bucket.reserve())
    for index, moment in enumerate(sends):
        window_start = moment - 1.0 - JITTER_MARGIN_SECONDS
        in_window = [other for other in sends[: index + 1] if window_start < other <= moment]
        assert len(in_window) <= rate


def test_a_stall_is_caught_up_within_the_burst() -> None:
    fake = FakeTime()
    bucket = TokenBucket(100, burst=10, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(50):
        bucket.acquire()  # steady: 10 ms apart
    fake.now += 0.2  # a 200 ms stall: 20 slots missed
    waits = [bucket.reserve() for _ in range(12)]
    assert waits[:10] == pytest.approx([0.0] * 10, abs=1e-9)  # ten go at once
    assert waits[10] > 0.001
