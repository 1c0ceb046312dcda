"""Retrying Stripe calls that may succeed later: 429, 409, 5xx and lost connections.

Every retry goes out under the same idempotency key (stripe-python keeps the options it was
given), so a request Stripe did execute is answered from its idempotency store, never run again.
stripe-python retries 409/5xx and connection errors itself but never a plain 429; this layer
adds longer, jittered backoff on top, for all of them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import stripe

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to send a request and how long to wait between sends."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with jitter: half to all of `base * 2^(attempt-1)`, capped."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * (rng or random).uniform(0.5, 1.0)


@dataclass
class AttemptCounter:
    """How many requests were sent, so the row can record it."""

    sent: int = 0
    last_error: str | None = field(default=None)


def _header(exc: stripe.StripeError, name: str) -> str | None:
    headers = exc.headers or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same request again could get a different answer."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    if isinstance(exc, stripe.APIError):
        if (_header(exc, "stripe-should-retry") or "").lower() == "false":
            return False
        return exc.http_status is None or exc.http_status == 409 or exc.http_status >= 500
    return False


def retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, stripe.StripeError):
        return None
    value = _header(exc, "retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_with_retries(
    request: Callable[[], T],
    *,
    policy: RetryPolicy,
    before_request: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    counter: AttemptCounter | None = None,
) -> T:
    """Send `request` until it answers or fails for good; the last error is raised as is."""
    counter = counter if counter is not None else AttemptCounter()
    for attempt in range(1, policy.attempts + 1):
        before_request()
        counter.sent += 1
        try:
            return request()
        except stripe.StripeError as exc:
            counter.last_error = describe_stripe_error(exc)
            if not is_retryable(exc) or attempt == policy.attempts:
                raise
            wait = policy.delay(attempt)
            hinted = retry_after(exc)
            if hinted is not None:
                wait = min(policy.max_delay, max(wait, hinted))
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def describe_stripe_error(exc: stripe.StripeError) -> str:
    """A one-line account of a Stripe error without secrets: status, code and message."""
    status = exc.http_status if exc.http_status is not None else "no response"
    code = f" {exc.code}" if exc.code else ""
    message = (exc.user_message or "no message").rstrip(".")
    return f"{type(exc).__name__} ({status}{code}): {message}"
