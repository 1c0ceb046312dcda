"""Off-session charges: one PaymentIntent per reference, however often it is asked for.

validate -> reuse the stored row, or pick the method and write the row (pending) -> create and
confirm the PaymentIntent under the idempotency key `charge:<reference>` -> store the answer.
A 402 is an outcome: the row is marked failed and the recovery case opened in one transaction.
Must not import `web` or `cli`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from sqlalchemy.orm import Session

from processor.charging.ledger import (
    FINAL_STATUSES,
    ChargeRow,
    StripeAnswer,
    conflict_with,
    find_charge,
    outcome_from_row,
    record_answer,
    record_unresolved,
    reserve_charge,
)
from processor.charging.lookup import find_intent_by_reference, outlived_its_key
from processor.charging.request import (
    ChargeOutcome,
    ChargeRefused,
    ChargeRequest,
    ChargeUnresolved,
)
from processor.charging.retry import (
    AttemptCounter,
    RetryPolicy,
    call_with_retries,
    describe_stripe_error,
)
from processor.charging.retry_ladder import decline_from_error, record_decline
from processor.charging.selection import (
    SelectedMethod,
    check_named_method,
    select_payment_method,
)
from processor.db.engine import unit_of_work
from processor.recovery.cases import AUTHENTICATION_REQUIRED, lock_payment_intents
from processor.stripe_gateway import ref_id, value_of

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")


def _send_now() -> None:
    return None


@dataclass(frozen=True)
class ChargeOptions:
    """How requests are paced and retried; the batch runner shares one rate limiter."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    before_request: Callable[[], None] = _send_now
    sleep: Callable[[float], None] = time.sleep

    def call(self, request: Callable[[], T], counter: AttemptCounter | None = None) -> T:
        """Send one Stripe request, paced and retried as these options say."""
        return call_with_retries(
            request,
            policy=self.retry,
            before_request=self.before_request,
            sleep=self.sleep,
            counter=counter,
        )


def charge_off_session(
    deps: Runtime, request: ChargeRequest, options: ChargeOptions | None = None
) -> ChargeOutcome:
    """Charge a saved method while the customer is away, at most once per reference.

    Returns the outcome (succeeded, processing, requires_action, or failed = declined). Raises
    `InvalidInput` (a `ChargeRefused` once a row exists) when nothing can be charged as asked,
    and `ChargeUnresolved` when Stripe's answer is unknown: the row then stays pending and
    charging the same reference again resolves it through the idempotency key.
    """
    options = options or ChargeOptions()
    request = request.validated()
    assert request.reference is not None
    if request.payment_method_id is not None:
        # The method is named: nothing to ask Stripe before the row, so one transaction.
        with unit_of_work(deps.sessions) as session:
            row = find_charge(session, request.reference) or reserve_named_charge(
                session, request, now=deps.clock()
            )
        return resume_charge(deps, row, request, options)
    with deps.sessions() as session:
        found = find_charge(session, request.reference)
    if found is None:
        method = _choose_method(deps, request, options)
        with unit_of_work(deps.sessions) as session:
            found, _inserted = reserve_charge(session, request, method.id, now=deps.clock())
    return resume_charge(deps, found, request, options)


def reserve_named_charge(session: Session, request: ChargeRequest, *, now: datetime) -> ChargeRow:
    """Write the pending row of a validated request that names its method (`InvalidInput` if
    we know the method cannot be charged); the existing row if the reference has one."""
    assert request.payment_method_id is not None
    check_named_method(session, request.payment_method_id, request.customer_id, now.date())
    row, _inserted = reserve_charge(session, request, request.payment_method_id, now=now)
    return row


def _choose_method(
    deps: Runtime, request: ChargeRequest, options: ChargeOptions
) -> SelectedMethod:
    try:
        return select_payment_method(
            stripe_client=deps.stripe,
            sessions=deps.sessions,
            customer_id=request.customer_id,
            now=deps.clock(),
            call=options.call,
        )
    except stripe.StripeError as exc:
        raise ChargeUnresolved(
            f"could not list the payment methods of {request.customer_id}: "
            f"{describe_stripe_error(exc)}. Nothing was charged",
            reference=request.reference or "",
        ) from exc


def resume_charge(
    deps: Runtime, row: ChargeRow, request: ChargeRequest, options: ChargeOptions
) -> ChargeOutcome:
    """Carry the charge of `row` (written for a validated `request`) to its outcome."""
    conflict = conflict_with(row, request)
    if conflict is not None:
        raise ChargeRefused(conflict, reference=row.reference, code="reference_conflict")
    if row.status == "error":
        raise ChargeRefused(
            row.error_message or "Stripe refused this charge earlier",
            reference=row.reference,
            code=row.error_code,
        )
    if row.status in FINAL_STATUSES:
        return outcome_from_row(row, resumed=True)
    if outlived_its_key(row.created_at, deps.clock()):
        intent = _find_forgotten_intent(deps, row, options)
        if intent is not None:
            return _store_intent(deps, row, intent, AttemptCounter())
    return _send(deps, row, options)


def _find_forgotten_intent(deps: Runtime, row: ChargeRow, options: ChargeOptions) -> Any:
    """The PaymentIntent a long-pending row may have created, found by its reference."""
    try:
        return find_intent_by_reference(
            deps.stripe,
            customer_id=row.customer_id,
            reference=row.reference,
            since=row.created_at,
            call=options.call,
        )
    except (stripe.StripeError, LookupError) as exc:
        detail = describe_stripe_error(exc) if isinstance(exc, stripe.StripeError) else str(exc)
        raise ChargeUnresolved(
            f"charge {row.reference} has been pending longer than Stripe keeps idempotency "
            f"keys, and its PaymentIntent could not be looked up ({detail}); nothing was sent",
            reference=row.reference,
        ) from exc


def payment_intent_params(row: ChargeRow, public_base_url: str) -> dict[str, Any]:
    """The request, built only from the stored row, so every resend is byte-for-byte the same."""
    params: dict[str, Any] = {
        "amount": row.amount,
        "currency": row.currency,
        "customer": row.customer_id,
        "payment_method": row.payment_method_id,
        "off_session": True,
        "confirm": True,
        "return_url": f"{public_base_url.rstrip('/')}/",
        "automatic_payment_methods": {"enabled": True},
        "metadata": {"reference": row.reference},
    }
    if row.description:
        params["description"] = row.description
    return params


def _send(deps: Runtime, row: ChargeRow, options: ChargeOptions) -> ChargeOutcome:
    params = payment_intent_params(row, deps.settings.public_base_url)
    counter = AttemptCounter()
    try:
        intent = options.call(
            lambda: deps.stripe.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": row.idempotency_key},
            ),
            counter,
        )
    except stripe.CardError as exc:
        return _store_decline(deps, row, exc, counter)
    except stripe.IdempotencyError as exc:
        _store_unresolved(deps, row, describe_stripe_error(exc), counter)
        raise ChargeRefused(
            f"Stripe already holds a different request under the key {row.idempotency_key} "
            "(was PUBLIC_BASE_URL or the stored row changed?); nothing was charged by this run",
            reference=row.reference,
            code="idempotency_error",
        ) from exc
    except stripe.InvalidRequestError as exc:
        message = explain_refusal(exc, row)
        answer = StripeAnswer(
            status="error", error_code=exc.code or "invalid_request", message=message
        )
        _store(deps, row, answer, counter)
        raise ChargeRefused(
            message, reference=row.reference, code=answer.error_code, field=exc.param
        ) from exc
    except stripe.StripeError as exc:
        last = describe_stripe_error(exc)
        _store_unresolved(deps, row, last, counter)
        raise ChargeUnresolved(
            f"no answer from Stripe after {counter.sent} attempt(s) ({last}); the charge stays "
            f"pending: run it again with reference {row.reference} to resolve it",
            reference=row.reference,
        ) from exc
    return _store_intent(deps, row, intent, counter)


def _store_intent(
    deps: Runtime, row: ChargeRow, intent: Any, counter: AttemptCounter
) -> ChargeOutcome:
    status = intent.status
    if status in ("succeeded", "processing"):
        return _store(deps, row, StripeAnswer(status=status, payment_intent_id=intent.id), counter)
    if status == "requires_action":
        # Off-session this should come back as a 402; if the bank still asks, win it back the
        # same way: the customer authenticates on the recovery page.
        answer = StripeAnswer(
            status="requires_action",
            payment_intent_id=intent.id,
            error_code=AUTHENTICATION_REQUIRED,
            message="The customer's bank asked the customer to authenticate this payment.",
        )
    else:
        error = value_of(intent, "last_payment_error")
        answer = StripeAnswer(
            status="failed",
            payment_intent_id=intent.id,
            error_code=value_of(error, "code"),
            decline_code=value_of(error, "decline_code"),
            message=value_of(error, "message") or f"The PaymentIntent ended in {status}.",
            charge_id=ref_id(value_of(intent, "latest_charge")),
            decline=decline_from_error(error) if error is not None else None,
        )
    return _store(deps, row, answer, counter, open_case=True)


def _store_decline(
    deps: Runtime, row: ChargeRow, exc: stripe.CardError, counter: AttemptCounter
) -> ChargeOutcome:
    intent = value_of(exc.error, "payment_intent")
    answer = StripeAnswer(
        status="failed",
        payment_intent_id=ref_id(intent),
        error_code=exc.code,
        decline_code=value_of(exc.error, "decline_code"),
        message=exc.user_message,
        charge_id=(
            ref_id(value_of(exc.error, "charge")) or ref_id(value_of(intent, "latest_charge"))
        ),
        decline=decline_from_error(exc.error),
    )
    return _store(deps, row, answer, counter, open_case=intent is not None)


def _store(
    deps: Runtime,
    row: ChargeRow,
    answer: StripeAnswer,
    counter: AttemptCounter,
    *,
    open_case: bool = False,
) -> ChargeOutcome:
    now = deps.clock()
    with unit_of_work(deps.sessions) as session:
        if answer.payment_intent_id is not None:
            # Same lock order as the webhook handlers (intent first, then the charges row),
            # so a 402 and its `payment_intent.payment_failed` arriving together cannot deadlock.
            lock_payment_intents(session.connection(), [answer.payment_intent_id])
        stored = record_answer(session, row.id, answer, attempts=counter.sent, now=now)
        if open_case and answer.payment_intent_id is not None:
            record_decline(
                session,
                deps.settings,
                answer.failure(row, row.payment_method_id, failed_at=now),
                reference=row.reference,
                decline=answer.decline if stored.status == "failed" else None,
                attempts_done=0,
            )
    outcome = outcome_from_row(stored, resumed=False)
    log.log(
        logging.DEBUG if outcome.category in ("succeeded", "processing") else logging.INFO,
        "charge %s: %s %s",
        row.reference,
        outcome.status,
        outcome.payment_intent_id or "",
        extra={"reference": row.reference, "customer_id": row.customer_id},
    )
    return outcome


def _store_unresolved(
    deps: Runtime, row: ChargeRow, message: str, counter: AttemptCounter
) -> None:
    with unit_of_work(deps.sessions) as session:
        record_unresolved(session, row.id, message, attempts=counter.sent, now=deps.clock())
    log.warning(
        "charge %s left pending: %s",
        row.reference,
        message,
        extra={"reference": row.reference, "customer_id": row.customer_id},
    )


def explain_refusal(exc: stripe.InvalidRequestError, row: ChargeRow) -> str:
    """Stripe's 400/404 in words a person running a charge can act on."""
    message = exc.user_message or "the request was refused"
    if exc.code == "resource_missing" and exc.param == "customer":
        return f"customer {row.customer_id} does not exist in Stripe"
    if exc.code == "resource_missing" and exc.param == "payment_method":
        return f"payment method {row.payment_method_id} does not exist in Stripe"
    where = f", {exc.param}" if exc.param else ""
    return f"Stripe refused the charge ({exc.code or 'invalid_request'}{where}): {message}"
