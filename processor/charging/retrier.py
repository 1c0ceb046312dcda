"""The retry worker (`processor retry`): claims due retries, confirms each one's PaymentIntent
off-session under its own idempotency key, and records the answer with its consequences.

Crash-safe: a claim is committed before its request is sent, so a worker killed mid-request
leaves the row `running`; once its lease runs out another worker (or the same one restarted)
sends the very same request again, and Stripe answers it from its idempotency store. A retry
whose answer is unknown stays `running` until then. Requests are paced by one token bucket
(RETRY_RATE), as the charger's batches are.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy.orm import Session

from processor.charging.decline_policy import AUTHENTICATION_REQUIRED, Decline
from processor.charging.ledger import StripeAnswer
from processor.charging.ratelimit import TokenBucket
from processor.charging.retry import AttemptCounter, describe_stripe_error
from processor.charging.retry_ladder import decline_from_error, record_decline
from processor.charging.service import ChargeOptions
from processor.charging.settlement import IntentOutcome, settle_charges
from processor.db.engine import unit_of_work
from processor.db.models import RecoveryCase
from processor.recovery.cases import close_case, lock_payment_intents
from processor.recovery.retries import (
    ClaimedRetry,
    claim_due_retries,
    finish_retry,
    release_first_email,
)
from processor.stripe_gateway import ref_id, value_of

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)
OUTCOMES = ("recovered", "declined", "stopped", "unresolved", "superseded", "deferred")


@dataclass(frozen=True)
class RetrierOptions:
    batch_size: int = 20
    # Longer than a request with all its backoff takes, so a live worker keeps its rows.
    lease: timedelta = timedelta(minutes=10)
    # No request starts this close to the end of its lease: another worker may take it then.
    lease_margin: timedelta = timedelta(minutes=2)
    poll_interval: float = 5.0


@dataclass
class RetryTally:
    """How the retries of one or more passes ended."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def __str__(self) -> str:
        return ", ".join(f"{outcome} {self.counts[outcome]}" for outcome in OUTCOMES)


class Retrier:
    """Runs due retries; `run_once()` drains what is due now (tests and `--once` use it)."""

    def __init__(
        self,
        deps: Runtime,
        *,
        options: RetrierOptions | None = None,
        charge_options: ChargeOptions | None = None,
        on_outcome: Callable[[str], None] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.deps = deps
        self.options = options or RetrierOptions()
        limiter = TokenBucket(deps.settings.retry_rate)
        self.charge_options = charge_options or ChargeOptions(before_request=limiter.acquire)
        self.on_outcome = on_outcome or (lambda _outcome: None)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:retrier"

    def run_once(self) -> RetryTally:
        """Claim and run batches until nothing is due."""
        tally = RetryTally()
        while True:
            with unit_of_work(self.deps.sessions) as session:
                claimed = claim_due_retries(
                    session,
                    worker_id=self.worker_id,
                    now=self.deps.clock(),
                    limit=self.options.batch_size,
                    lease=self.options.lease,
                )
            if not claimed:
                return tally
            for retry in claimed:
                if self.deps.clock() >= retry.lease_until - self.options.lease_margin:
                    outcome = "deferred"  # left `running`: claimed again once its lease ends
                else:
                    outcome = self.run_retry(retry)
                tally.add(outcome)
                self.on_outcome(outcome)
            log.info("retries: %s", tally, extra={"worker": self.worker_id})
            if "unresolved" in tally.counts or "deferred" in tally.counts:
                return tally  # Stripe is slow or not answering: wait for the next poll

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set."""
        log.info("retry worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("retry pass failed; trying again after the poll interval")
            stop.wait(self.options.poll_interval)

    def run_retry(self, retry: ClaimedRetry) -> str:
        """Send one claimed retry and record what came of it."""
        params = {
            "payment_method": retry.payment_method_id,
            "off_session": True,
            "return_url": f"{self.deps.settings.public_base_url.rstrip('/')}/",
        }
        counter = AttemptCounter()
        try:
            intent = self.charge_options.call(
                lambda: self.deps.stripe.v1.payment_intents.confirm(
                    retry.payment_intent_id,
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": retry.idempotency_key},
                ),
                counter,
            )
        except stripe.CardError as exc:
            return self._declined(retry, exc.error, decline_from_error(exc.error), exc.user_message)
        except stripe.InvalidRequestError as exc:
            # Typically the PaymentIntent was paid or canceled meanwhile: nothing to retry.
            return self._stopped(retry, describe_stripe_error(exc))
        except stripe.StripeError as exc:
            log.warning(
                "retry %s of %s unresolved, resent after its lease: %s",
                retry.attempt,
                retry.charge_reference,
                describe_stripe_error(exc),
            )
            return "unresolved"
        if intent.status == "succeeded":
            return self._recovered(retry, intent)
        error = value_of(intent, "last_payment_error")
        if intent.status == "requires_action":
            decline = Decline(code=AUTHENTICATION_REQUIRED, decline_code=AUTHENTICATION_REQUIRED)
            return self._declined(
                retry, error, decline, "The bank asked the customer to authenticate."
            )
        return self._declined(retry, error, decline_from_error(error), value_of(error, "message"))

    def _recovered(self, retry: ClaimedRetry, intent: Any) -> str:
        now = self.deps.clock()
        with unit_of_work(self.deps.sessions) as session:
            lock_payment_intents(session.connection(), [retry.payment_intent_id])
            charge_id = ref_id(value_of(intent, "latest_charge"))
            if not self._finish(
                session,
                retry,
                "succeeded",
                now,
                charge_id=charge_id,
            ):
                return "superseded"
            outcome = IntentOutcome(
                retry.payment_intent_id, retry.charge_reference, "succeeded", now
            )
            settle_charges(session.connection(), [outcome], now=now)
            close_case(session, retry.payment_intent_id, status="recovered", at=now, now=now)
        log.info("retry %s of %s: recovered", retry.attempt, retry.charge_reference)
        return "recovered"

    def _finish(
        self, session: Session, retry: ClaimedRetry, status: str, now: datetime, **result: Any
    ) -> bool:
        """Record the retry's result, unless another worker took it over (False then)."""
        return finish_retry(
            session, retry, worker_id=self.worker_id, status=status, now=now, **result
        )

    def _declined(
        self, retry: ClaimedRetry, error: Any, decline: Decline, message: str | None
    ) -> str:
        now = self.deps.clock()
        charge_id = ref_id(value_of(error, "charge"))
        with unit_of_work(self.deps.sessions) as session:
            lock_payment_intents(session.connection(), [retry.payment_intent_id])
            if not self._finish(
                session,
                retry,
                "failed",
                now,
                charge_id=charge_id,
                decline=decline,
                message=message,
            ):
                return "superseded"
            case = session.get(RecoveryCase, retry.case_id)
            assert case is not None  # the row cascades with its case
            answer = StripeAnswer(
                status="failed",
                payment_intent_id=retry.payment_intent_id,
                error_code=decline.code,
                decline_code=decline.decline_code,
                message=message,
                charge_id=charge_id,
                decline=decline,
            )
            next_due = record_decline(
                session,
                self.deps.settings,
                answer.failure(case, retry.payment_method_id, failed_at=now),
                reference=retry.charge_reference,
                decline=decline,
                attempts_done=retry.attempt,
            )
        log.info(
            "retry %s of %s declined (%s/%s, advice %s): %s",
            retry.attempt,
            retry.charge_reference,
            decline.code,
            decline.decline_code,
            decline.advice_code,
            f"next at {next_due.isoformat()}" if next_due else "no more",
        )
        return "declined"

    def _stopped(self, retry: ClaimedRetry, message: str) -> str:
        now = self.deps.clock()
        with unit_of_work(self.deps.sessions) as session:
            if not self._finish(
                session,
                retry,
                "failed",
                now,
                message=message,
            ):
                return "superseded"
            release_first_email(session, retry.case_id, now=now)
        log.warning("retry %s of %s stopped: %s", retry.attempt, retry.charge_reference, message)
        return "stopped"
