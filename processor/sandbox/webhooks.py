"""Webhook delivery: signed POSTs of events to registered endpoints, retried with backoff.

Each attempt is signed afresh (`t=<now>,v1=<sig>` with one `v1` per secret, STRIPE.md 6.1).
Any non-2xx answer, a redirect, a timeout or a connection error is a failure and is retried
on `retry_schedule`; every attempt is written to the delivery log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from processor.sandbox.ids import new_id
from processor.sandbox.knobs import monotonic
from processor.sandbox.scheduler import Scheduler
from processor.sandbox.store import Store, StripeObject

DEFAULT_RETRY_SCHEDULE = (0.5, 1.0, 2.0, 4.0)
DEFAULT_TIMEOUT = 5.0
SHUFFLE_WINDOW = 0.3


def signature_header(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    parts = [f"t={timestamp}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    secrets: tuple[str, ...]
    enabled_events: tuple[str, ...] = ("*",)

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt as the log keeps it."""

    event_id: str
    type: str
    url: str
    endpoint_id: str
    attempt: int
    status_code: int | None
    error: str | None
    timestamp: datetime
    duration: float

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat()
        data["succeeded"] = self.succeeded
        return data


@dataclass
class _Job:
    event: StripeObject
    endpoint: WebhookEndpoint
    payload: bytes
    attempt: int = 1


class WebhookDispatcher:
    def __init__(self, store: Store, scheduler: Scheduler) -> None:
        self._store = store
        self._scheduler = scheduler
        self._condition = threading.Condition()
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._deliveries: list[Delivery] = []
        self._held: list[_Job] = []
        self._pending = 0
        self._delivered: set[tuple[str, str]] = set()
        self._client: httpx.Client | None = None
        self._random = random.Random()
        self.paused = False
        self.retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
        self.timeout = DEFAULT_TIMEOUT
        self.duplicate_share = 0.0
        self.shuffle = False
        self.on_delivery: Callable[[Delivery], None] | None = None

    # -- configuration ----------------------------------------------------------------------

    def add_endpoint(
        self, url: str, secrets: Sequence[str], enabled_events: Sequence[str] = ("*",)
    ) -> str:
        if isinstance(secrets, str):
            secrets = [secrets]
        if not secrets or not all(s.startswith("whsec_") for s in secrets):
            raise ValueError("webhook secrets must be a non-empty list of whsec_… strings")
        endpoint = WebhookEndpoint(new_id("we"), url, tuple(secrets), tuple(enabled_events))
        with self._condition:
            self._endpoints[endpoint.id] = endpoint
        return endpoint.id

    def remove_endpoint(self, endpoint_id: str) -> None:
        with self._condition:
            if self._endpoints.pop(endpoint_id, None) is None:
                raise KeyError(endpoint_id)

    @property
    def endpoints(self) -> list[WebhookEndpoint]:
        with self._condition:
            return list(self._endpoints.values())

    def reset(self, *, keep_endpoints: bool = False) -> None:
        self._scheduler.cancel_all()
        with self._condition:
            if not keep_endpoints:
                self._endpoints.clear()
            self._deliveries.clear()
            self._held.clear()
            self._delivered.clear()
            self._pending = 0
            self.paused = False
            self.retry_schedule = DEFAULT_RETRY_SCHEDULE
            self.timeout = DEFAULT_TIMEOUT
            self.duplicate_share = 0.0
            self.shuffle = False
            self._condition.notify_all()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- delivery ---------------------------------------------------------------------------

    def enqueue(self, events: list[StripeObject]) -> None:
        """Queue each event for every endpoint that wants it (delivery happens elsewhere)."""
        if not events:
            return
        with self._condition:
            endpoints = list(self._endpoints.values())
            for event in events:
                targets = [e for e in endpoints if e.wants(event["type"])]
                if not targets:
                    continue
                with self._store.lock:
                    event["pending_webhooks"] += len(targets)
                    payload = json.dumps(
                        {k: v for k, v in event.items() if not k.startswith("_")}, indent=2
                    ).encode()
                for endpoint in targets:
                    copies = 2 if self._random.random() < self.duplicate_share else 1
                    for _ in range(copies):
                        self._schedule(_Job(event, endpoint, payload), self._first_delay())

    def _first_delay(self) -> float:
        return self._random.uniform(0, SHUFFLE_WINDOW) if self.shuffle else 0.0

    def _schedule(self, job: _Job, delay: float) -> None:
        """Caller holds the condition."""
        self._pending += 1
        if self.paused:
            self._held.append(job)
            return
        generation = self._scheduler.generation
        self._scheduler.call_later(delay, lambda: self._attempt(job, generation))

    def pause(self) -> None:
        with self._condition:
            self.paused = True

    def resume(self) -> None:
        with self._condition:
            self.paused = False
            held, self._held = self._held, []
            self._pending -= len(held)
            for job in held:
                self._schedule(job, self._first_delay())

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False)
        return self._client

    def _attempt(self, job: _Job, generation: int) -> None:
        with self._condition:
            if generation != self._scheduler.generation:
                return
            if self.paused:  # paused after this attempt was scheduled: hold it
                self._held.append(job)
                return
            endpoint = self._endpoints.get(job.endpoint.id)
            timeout = self.timeout
        status: int | None = None
        error: str | None = None
        started = monotonic()
        if endpoint is None:
            error = "endpoint removed"
        else:
            header = signature_header(job.payload, endpoint.secrets, self._store.now())
            try:
                response = self._http().post(
                    endpoint.url,
                    content=job.payload,
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": header,
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                    timeout=timeout,
                )
                status = response.status_code
            except httpx.TimeoutException:
                error = "timeout"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        record = Delivery(
            event_id=job.event["id"],
            type=job.event["type"],
            url=job.endpoint.url,
            endpoint_id=job.endpoint.id,
            attempt=job.attempt,
            status_code=status,
            error=error,
            timestamp=self._store.now_datetime(),
            duration=monotonic() - started,
        )
        listener = self.on_delivery
        if listener is not None:
            listener(record)
        with self._condition:
            if generation != self._scheduler.generation:
                return
            self._deliveries.append(record)
            self._pending -= 1
            if record.succeeded:
                self._mark_delivered(job)
            elif endpoint is not None and job.attempt <= len(self.retry_schedule):
                delay = self.retry_schedule[job.attempt - 1]
                self._schedule(_Job(job.event, job.endpoint, job.payload, job.attempt + 1), delay)
            self._condition.notify_all()

    def _mark_delivered(self, job: _Job) -> None:
        marker = (job.event["id"], job.endpoint.id)
        if marker in self._delivered:
            return
        self._delivered.add(marker)
        with self._store.lock:
            job.event["pending_webhooks"] = max(0, job.event["pending_webhooks"] - 1)

    # -- observation ------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        with self._condition:
            return list(self._deliveries)

    @property
    def pending(self) -> int:
        with self._condition:
            return self._pending

    def wait_until_idle(self, timeout: float) -> bool:
        deadline = monotonic() + timeout
        with self._condition:
            while self._pending > 0:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
            return True
