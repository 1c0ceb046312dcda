"""`Sandbox`: the sandbox's state plus the controls tests use (thread-safe).

sandbox = Sandbox(secret_key="sk_test_…", publishable_key="pk_test_…")
sandbox.add_webhook_endpoint(url, ["whsec_…"]); sandbox.wait_for_deliveries()
sandbox.set_latency(0.2); sandbox.inject_errors(0.5); sandbox.authenticate("pi_…", True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from processor.config import SANDBOX_PUBLISHABLE_KEY, SANDBOX_SECRET_KEY
from processor.sandbox import authentication, payment_outcomes, versions
from processor.sandbox.context import Call
from processor.sandbox.events import create_event
from processor.sandbox.idempotency import IdempotencyCache
from processor.sandbox.knobs import Knobs
from processor.sandbox.scheduler import Scheduler
from processor.sandbox.store import Clock, Store, StripeObject, public
from processor.sandbox.versions import PINNED_API_VERSION
from processor.sandbox.webhooks import Delivery, WebhookDispatcher
from processor.sandbox.wire import Params

DEFAULT_SEPA_SETTLEMENT_DELAY = 2.0


def refuse_live_key(key: str, prefixes: tuple[str, ...]) -> None:
    if "_live_" in key:
        raise ValueError("the sandbox refuses live keys; use sk_test_/pk_test_ keys")
    if not key.startswith(prefixes):
        raise ValueError(f"expected a key starting with {' or '.join(prefixes)}")


@dataclass
class ChargeAttempt:
    """A charge the sandbox actually executed (one per charge object it created)."""

    charge_id: str
    payment_intent: str
    idempotency_key: str | None
    request_id: str | None
    amount: int
    currency: str
    customer: str | None
    payment_method: str
    status: str  # succeeded | failed | pending (SEPA until it settles)
    failure_code: str | None
    created: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Sandbox:
    """The control object behind a sandbox app (`app.state.sandbox`)."""

    def __init__(
        self,
        *,
        secret_key: str = SANDBOX_SECRET_KEY,
        publishable_key: str = SANDBOX_PUBLISHABLE_KEY,
        clock: Clock | None = None,
        api_version: str = PINNED_API_VERSION,
    ) -> None:
        refuse_live_key(secret_key, ("sk_test_", "rk_test_"))
        refuse_live_key(publishable_key, ("pk_test_",))
        self.secret_key = secret_key
        self.publishable_key = publishable_key
        # The account's default version: requests without `Stripe-Version` run at it, and
        # events are rendered at it.
        if not versions.is_version(api_version):
            raise ValueError(f"not a Stripe API version: {api_version!r}")
        self.api_version = api_version
        self.store = Store(clock)
        self.knobs = Knobs()
        self.idempotency = IdempotencyCache()
        self.scheduler = Scheduler()
        self.webhooks = WebhookDispatcher(self.store, self.scheduler)
        self.sepa_settlement_delay: float | None = DEFAULT_SEPA_SETTLEMENT_DELAY
        self._charges: list[ChargeAttempt] = []

    # -- running calls ----------------------------------------------------------------------

    def new_call(
        self,
        params: Params,
        key_kind: str,
        *,
        api_version: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        base_url: str = "",
        path_args: dict[str, str] | None = None,
    ) -> Call:
        return Call(
            store=self.store,
            params=params,
            key_kind=key_kind,
            api_version=api_version or self.api_version,
            request_id=request_id,
            idempotency_key=idempotency_key,
            base_url=base_url,
            path_args=path_args or {},
            emit_event=self._emit,
            record_charge=self._record_charge,
            processing_started=self._processing_started,
        )

    def execute(self, handler: Callable[[Call], StripeObject], call: Call) -> StripeObject:
        """Run a resource handler under the lock; queue its events even if it raised."""
        try:
            with self.store.lock:
                return handler(call)
        finally:
            self.webhooks.enqueue(call.emitted)

    def _emit(
        self, call: Call, event_type: str, obj: StripeObject, previous: dict[str, Any] | None
    ) -> StripeObject:
        return create_event(
            self.store,
            event_type,
            obj,
            api_version=self.api_version,
            request_id=call.request_id,
            idempotency_key=call.idempotency_key,
            previous_attributes=previous,
        )

    def _record_charge(self, call: Call, charge: StripeObject) -> None:
        self._charges.append(
            ChargeAttempt(
                charge_id=charge["id"],
                payment_intent=charge["payment_intent"],
                idempotency_key=call.idempotency_key,
                request_id=call.request_id,
                amount=charge["amount"],
                currency=charge["currency"],
                customer=charge["customer"],
                payment_method=charge["payment_method"],
                status=charge["status"],
                failure_code=charge["failure_code"],
                created=charge["created"],
            )
        )

    def _processing_started(self, payment_intent_id: str) -> None:
        delay = self.sepa_settlement_delay
        if delay is not None:
            self.scheduler.call_later(delay, lambda: self._settle_if_processing(payment_intent_id))

    def _settle_if_processing(self, payment_intent_id: str) -> None:
        with self.store.lock:
            intent = self.store.get("payment_intent", payment_intent_id)
            if intent is None or intent["status"] != "processing":
                return
        self.settle(payment_intent_id)

    def _system_call(self) -> Call:
        return self.new_call({}, "system")

    # -- webhooks ---------------------------------------------------------------------------

    def add_webhook_endpoint(
        self, url: str, secrets: Sequence[str], enabled_events: Sequence[str] = ("*",)
    ) -> str:
        return self.webhooks.add_endpoint(url, secrets, enabled_events)

    def remove_webhook_endpoint(self, endpoint_id: str) -> None:
        self.webhooks.remove_endpoint(endpoint_id)

    @property
    def deliveries(self) -> list[Delivery]:
        return self.webhooks.deliveries

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Block until no delivery is queued, held, in flight or waiting for a retry."""
        if not self.webhooks.wait_until_idle(timeout):
            raise TimeoutError(
                f"{self.webhooks.pending} webhook deliveries still pending after {timeout}s"
                + (" (webhooks are paused)" if self.webhooks.paused else "")
            )
        return True

    def pause_webhooks(self) -> None:
        self.webhooks.pause()

    def resume_webhooks(self) -> None:
        self.webhooks.resume()

    def set_webhook_chaos(self, duplicate_share: float = 0.0, shuffle: bool = False) -> None:
        self.webhooks.duplicate_share = float(duplicate_share)
        self.webhooks.shuffle = bool(shuffle)

    def set_webhook_retry_schedule(self, delays: Sequence[float]) -> None:
        """Seconds to wait before each retry; one attempt plus len(delays) retries in all."""
        self.webhooks.retry_schedule = tuple(float(d) for d in delays)

    def set_webhook_timeout(self, seconds: float) -> None:
        self.webhooks.timeout = float(seconds)

    # -- knobs ------------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        self.knobs.latency = max(0.0, float(seconds))

    def set_rate_limit(self, requests_per_second: float | None) -> None:
        self.knobs.requests_per_second = requests_per_second

    def inject_errors(
        self,
        share: float,
        should_retry: bool | None = True,
        *,
        after_execution: bool = False,
        seed: int | None = None,
    ) -> None:
        """Answer `share` of API requests with a 500 `api_error`.

        `after_execution=True` runs the request first (its result is kept for its idempotency
        key) and only then fails the answer: a lost response, as on a real network.
        """
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be between 0 and 1")
        self.knobs.error_share = float(share)
        self.knobs.error_should_retry = should_retry
        self.knobs.error_after_execution = after_execution
        self.knobs.seed(seed)

    def set_answer_after_webhooks(self, enabled: bool) -> None:
        """Hold each `/v1` answer until every webhook delivery queued by then is done: the
        events reach the merchant before the response does, as they can over a slow network."""
        self.knobs.answer_after_webhooks = bool(enabled)

    def set_sepa_settlement_delay(self, seconds: float | None) -> None:
        """Seconds until a `processing` SEPA debit settles by itself; None: only on demand."""
        self.sepa_settlement_delay = seconds

    def advance_clock(self, seconds: float) -> datetime:
        """Move the sandbox's clock forward (tokens expire, events age) without freezegun."""
        with self.store.lock:
            self.store.clock_offset += timedelta(seconds=seconds)
            return self.store.now_datetime()

    def reset(self, *, keep_webhook_endpoints: bool = False) -> None:
        """Forget every object, event, delivery, idempotency key and knob setting."""
        self.webhooks.reset(keep_endpoints=keep_webhook_endpoints)
        with self.store.lock:
            self.store.reset()
            self._charges.clear()
        self.idempotency.reset()
        self.knobs.reset()
        self.sepa_settlement_delay = DEFAULT_SEPA_SETTLEMENT_DELAY

    def close(self) -> None:
        self.scheduler.close()
        self.webhooks.close()

    # -- what happened ----------------------------------------------------------------------

    @property
    def events(self) -> list[StripeObject]:
        """Every event, oldest first (snapshots; mutating them changes nothing)."""
        with self.store.lock:
            return [public(e) for e in reversed(list(self.store.newest_first("event")))]

    @property
    def charge_attempts(self) -> list[ChargeAttempt]:
        with self.store.lock:
            for attempt in self._charges:
                charge = self.store.objects.get(attempt.charge_id)
                if charge is not None:
                    attempt.status = charge["status"]
                    attempt.failure_code = charge["failure_code"]
            return [ChargeAttempt(**a.__dict__) for a in self._charges]

    def charges_for(
        self, *, idempotency_key: str | None = None, payment_intent: str | None = None
    ) -> list[ChargeAttempt]:
        return [
            a
            for a in self.charge_attempts
            if (idempotency_key is None or a.idempotency_key == idempotency_key)
            and (payment_intent is None or a.payment_intent == payment_intent)
        ]

    def get(self, object_id: str) -> StripeObject | None:
        """Any object by id, as the API would show it to a secret key."""
        with self.store.lock:
            obj = self.store.objects.get(object_id)
            return public(obj) if obj is not None else None

    # -- customer actions -------------------------------------------------------------------

    def authenticate(self, intent_id: str, success: bool) -> StripeObject:
        """Complete (True) or fail (False) 3-D Secure for an intent in `requires_action`."""
        call = self._system_call()
        kind = "setup_intent" if intent_id.startswith("seti_") else "payment_intent"

        def run(call: Call) -> StripeObject:
            intent = call.store.require(kind, intent_id, param="intent")
            return public(authentication.authenticate(call, intent, success))

        return self.execute(run, call)

    def settle(self, payment_intent_id: str) -> StripeObject:
        """Settle a `processing` SEPA debit now: succeeded, or failed by its IBAN."""
        call = self._system_call()

        def run(call: Call) -> StripeObject:
            intent = call.store.require("payment_intent", payment_intent_id, param="intent")
            payment_outcomes.settle(call, intent)
            return public(intent)

        return self.execute(run, call)

    def settle_processing(self) -> list[str]:
        """Settle every `processing` PaymentIntent; answers their ids."""
        with self.store.lock:
            waiting = [
                i["id"]
                for i in reversed(list(self.store.newest_first("payment_intent")))
                if i["status"] == "processing"
            ]
        for intent_id in waiting:
            try:
                self.settle(intent_id)
            except Exception as exc:  # settled meanwhile by the timer
                if not _is_state_error(exc):
                    raise
        return waiting


def _is_state_error(exc: Exception) -> bool:
    return getattr(exc, "code", None) == "payment_intent_unexpected_state"
