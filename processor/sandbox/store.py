"""The sandbox's state: every object by id, creation order per kind, and the clock.

Objects are plain dicts in Stripe's JSON shape; keys starting with `_` are private
bookkeeping (test-card behaviour, token payloads) and never leave the sandbox.
One re-entrant lock guards everything, so control methods are safe from any thread.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from processor.sandbox.errors import no_such
from processor.sandbox.ids import new_id

Clock = Callable[[], datetime]
StripeObject = dict[str, Any]

KIND_LABELS = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "confirmation_token": "confirmation_token",
    "setup_intent": "setup_intent",
    "setup_attempt": "setup_attempt",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "event": "event",
    "mandate": "mandate",
    "refund": "refund",
    "dispute": "dispute",
}


def real_utc_now() -> datetime:
    """Default clock; looked up at call time so freezegun can replace `datetime`."""
    return datetime.now(UTC)


def public(value: Any) -> Any:
    """A deep copy of an object without its private `_` keys (those are top-level only)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items() if not k.startswith("_")}
    return _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Store:
    """Objects, their order of creation and the sandbox clock, behind one lock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.lock = threading.RLock()
        self._clock = clock or real_utc_now
        self.objects: dict[str, StripeObject] = {}
        self.ordered: dict[str, list[str]] = defaultdict(list)
        self.clock_offset = timedelta()
        self.writes = 0

    def reset(self) -> None:
        with self.lock:
            self.objects.clear()
            self.ordered.clear()
            self.clock_offset = timedelta()
            self.writes += 1

    def now_datetime(self) -> datetime:
        return self._clock() + self.clock_offset

    def now(self) -> int:
        """Stripe timestamps are whole unix seconds."""
        return int(self.now_datetime().timestamp())

    def add(self, obj: StripeObject) -> StripeObject:
        with self.lock:
            self.objects[obj["id"]] = obj
            self.ordered[obj["object"]].append(obj["id"])
            self.writes += 1
        return obj

    def add_customer_step(self, prefix: str, kind: str, intent: StripeObject) -> str:
        """A page the customer visits for `intent` (a bank redirect, a 3-D Secure challenge):
        kept by id for that page, hidden from the API and from every list; its id."""
        step_id = new_id(prefix)
        self.objects[step_id] = {
            "id": step_id,
            "object": kind,
            "intent": intent["id"],
            "_hidden": True,
        }
        return step_id

    def touch(self) -> None:
        """Record that state changed (the idempotency layer keeps only executed requests)."""
        self.writes += 1

    def get(self, kind: str, object_id: Any) -> StripeObject | None:
        if not isinstance(object_id, str):
            return None
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            return None
        return obj

    def require(self, kind: str, object_id: Any, *, param: str | None = None) -> StripeObject:
        obj = self.get(kind, object_id)
        if obj is None or obj.get("_hidden"):
            raise no_such(KIND_LABELS.get(kind, kind), str(object_id), param=param)
        return obj

    def newest_first(self, kind: str) -> Iterator[StripeObject]:
        """Objects of one kind, most recent first, read lazily (hold the lock meanwhile)."""
        objects = self.objects
        for object_id in reversed(self.ordered[kind]):
            obj = objects.get(object_id)
            if obj is not None:
                yield obj
