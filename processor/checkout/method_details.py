"""Complete `payment_methods` rows whose details never arrived, through the Stripe gateway.

`setup_intent.succeeded` names a method without describing it; `payment_method.attached`
normally brings the details. If that event is lost, this step fetches the method from Stripe,
outside any webhook request: from a background thread of the web process and from `reconcile`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import stripe
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.methods import MethodChange, merge_method, method_details
from processor.clock import Clock
from processor.db.models import PaymentMethod
from processor.stripe_gateway import ref_id

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

# Long enough for `payment_method.attached` to arrive on its own in the normal case.
MISSING_FOR = timedelta(minutes=5)
BATCH_LIMIT = 50
INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class Completion:
    completed: int = 0
    gone: int = 0
    failed: int = 0


def methods_missing_details(
    sessions: sessionmaker[Session], *, created_before: datetime, limit: int
) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(PaymentMethod.id)
                .where(
                    PaymentMethod.type.is_(None),
                    PaymentMethod.details_updated_at.is_(None),
                    PaymentMethod.created_at <= created_before,
                )
                .order_by(PaymentMethod.created_at)
                .limit(limit)
            )
        )


def complete_missing_details(
    sessions: sessionmaker[Session],
    client: stripe.StripeClient,
    *,
    clock: Clock,
    missing_for: timedelta = MISSING_FOR,
    limit: int = BATCH_LIMIT,
) -> Completion:
    """Fetch and fill up to `limit` methods that have waited `missing_for` for their details."""
    completed = gone = failed = 0
    for method_id in methods_missing_details(
        sessions, created_before=clock() - missing_for, limit=limit
    ):
        try:
            method = client.v1.payment_methods.retrieve(method_id).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            gone += 1
            log.warning("payment method %s no longer exists at Stripe", method_id)
            now = clock()
            with sessions.begin() as session:
                # Checked: not asked again. Its details stay unknown.
                session.execute(
                    update(PaymentMethod)
                    .where(PaymentMethod.id == method_id)
                    .values(details_updated_at=now, updated_at=now)
                )
            continue
        except stripe.StripeError as exc:
            failed += 1
            log.warning("could not fetch payment method %s: %s", method_id, type(exc).__name__)
            continue
        now = clock()
        with sessions.begin() as session:
            change = MethodChange(
                method_id,
                details=method_details(method),
                details_at=now,
                customer_id=ref_id(method.get("customer")),
            )
            merge_method(session, change, now=now)
        completed += 1
    return Completion(completed, gone, failed)


class MethodDetailsWorker:
    """Runs `complete_missing_details` every `interval` seconds on a daemon thread."""

    def __init__(self, deps: Runtime, interval: float = INTERVAL_SECONDS) -> None:
        self._run_once: Callable[[], Completion] = lambda: complete_missing_details(
            deps.sessions, deps.stripe, clock=deps.clock
        )
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="method-details", daemon=True)

    def start(self) -> MethodDetailsWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._run_once()
            except Exception:  # keep the thread alive; the next round tries again
                log.exception("completing payment method details failed")
