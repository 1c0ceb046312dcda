"""Saving a payment method: create and confirm a SetupIntent from the browser's ConfirmationToken.

A service: it never imports starlette or `processor.web`. Every attempt is written to
`setup_attempts` before the caller answers; stripe-python's exceptions become the errors of
`processor.errors` (declines carry Stripe's customer-safe message, nothing more).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import stripe
from sqlalchemy.orm import Session, sessionmaker
from stripe.params import SetupIntentCreateParams

from processor.checkout.generated import BANK_REDIRECT_TYPES, TYPE_METADATA_KEY
from processor.checkout.setup_records import AttemptRecord, error_fields, record_attempt
from processor.clock import Clock
from processor.errors import InvalidInput, PaymentDeclined, ProcessorError, StripeUnavailable
from processor.stripe_gateway import declined, ref_id, require_confirmation_token_id, value_of

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

ANSWERED_STATUSES = frozenset({"succeeded", "requires_action", "processing"})
UNAVAILABLE_MESSAGE = "We could not reach our payment provider. Please try again in a moment."
STALE_DETAILS_MESSAGE = (
    "These payment details have expired or were already used. Please enter them again."
)


@dataclass(frozen=True)
class SetupStarted:
    """What the browser needs next: the client secret, and whether it must act (3-D Secure)."""

    setup_intent_id: str
    client_secret: str
    status: str


def create_and_confirm(
    deps: Runtime, *, customer_id: str, confirmation_token_id: object, return_url: str
) -> SetupStarted:
    """Create and confirm a SetupIntent for `customer_id` in one request to Stripe."""
    token = require_confirmation_token_id(confirmation_token_id)
    attempt = AttemptRecord(customer_id=customer_id, confirmation_token_id=token)
    intent = _create_confirmed(deps, attempt, token, return_url)
    status = str(intent.status)
    error = value_of(intent, "last_setup_error")
    record_attempt(
        deps.sessions,
        deps.clock,
        attempt.with_outcome(
            setup_intent_id=intent.id,
            status=status,
            payment_method_id=ref_id(intent.payment_method),
            **error_fields(error),
        ),
    )
    if status not in ANSWERED_STATUSES:
        # Confirmation ended without an error response but did not save the method.
        raise PaymentDeclined(
            value_of(error, "message") or "Your payment method could not be saved.",
            code=value_of(error, "code") or "setup_failed",
            decline_code=value_of(error, "decline_code"),
        )
    if intent.client_secret is None:
        raise ProcessorError("Stripe answered a SetupIntent without a client secret.")
    return SetupStarted(intent.id, intent.client_secret, status)


def _create_confirmed(
    deps: Runtime, attempt: AttemptRecord, token: str, return_url: str
) -> stripe.SetupIntent:
    """The one request to Stripe; a refusal is recorded on the attempt, then raised as ours."""
    customer_id = attempt.customer_id
    params: SetupIntentCreateParams = {
        "confirm": True,
        "customer": customer_id,
        "confirmation_token": token,
        "automatic_payment_methods": {"enabled": True},
        "return_url": return_url,
        "use_stripe_sdk": True,
        # Lets the webhook find the attempt row of a create whose answer was lost.
        "metadata": {"confirmation_token": token},
        # The method's type tells a single-use bank method (iDEAL, Bancontact) from the rest.
        "expand": ["payment_method"],
    }
    # Keyed on the token (single use anyway) and the customer: a resent request replays
    # Stripe's first answer instead of creating a second SetupIntent.
    options = {"idempotency_key": f"setup:{customer_id}:{token}"}
    sessions, clock = deps.sessions, deps.clock
    try:
        intent = deps.stripe.v1.setup_intents.create(params, options)  # type: ignore[arg-type]
        _mark_bank_redirect(deps.stripe, intent)
        return intent
    except stripe.CardError as exc:
        _record_decline(sessions, clock, attempt, exc)
        raise declined(exc) from exc
    except stripe.InvalidRequestError as exc:
        _record_refusal(sessions, clock, attempt, exc)
        if _about_confirmation_token(exc):
            raise InvalidInput(
                STALE_DETAILS_MESSAGE,
                field="confirmationTokenId",
                code="confirmation_token_unusable",
            ) from exc
        log.error("Stripe refused a SetupIntent create: %s (param %s)", exc.code, exc.param)
        raise ProcessorError("Stripe refused the request.") from exc
    except stripe.StripeError as exc:
        _record_unavailable(sessions, clock, attempt, exc)
        raise StripeUnavailable(UNAVAILABLE_MESSAGE) from exc


def _mark_bank_redirect(stripe_client: stripe.StripeClient, intent: stripe.SetupIntent) -> None:
    """Name the bank method's type in the SetupIntent's metadata, so that its webhooks alone
    tell that the method to save is the `sepa_debit` one the bank set-up generates. The
    customer is sent to the bank only after this answer, so the mark precedes its events."""
    kind = value_of(intent.payment_method, "type")
    if kind in BANK_REDIRECT_TYPES and intent.status == "requires_action":
        stripe_client.v1.setup_intents.update(
            intent.id, {"metadata": {TYPE_METADATA_KEY: str(kind)}}
        )


def _about_confirmation_token(exc: stripe.InvalidRequestError) -> bool:
    if exc.param == "confirmation_token":
        return True
    return exc.code == "resource_missing" and "confirmation_token" in str(exc.user_message or "")


def _record_decline(
    sessions: sessionmaker[Session], clock: Clock, attempt: AttemptRecord, exc: stripe.CardError
) -> None:
    error = exc.error
    intent = value_of(error, "setup_intent")
    record_attempt(
        sessions,
        clock,
        attempt.with_outcome(
            setup_intent_id=intent.id if intent else None,
            status=str(intent.status) if intent else "requires_payment_method",
            payment_method_id=ref_id(value_of(error, "payment_method")),
            error_code=exc.code,
            decline_code=value_of(error, "decline_code"),
            error_message=exc.user_message,
        ),
    )


def _record_refusal(
    sessions: sessionmaker[Session],
    clock: Clock,
    attempt: AttemptRecord,
    exc: stripe.InvalidRequestError,
) -> None:
    record_attempt(
        sessions,
        clock,
        attempt.with_outcome(
            status="rejected",
            error_code=exc.code or "invalid_request_error",
            error_message=exc.user_message,
        ),
    )


def _record_unavailable(
    sessions: sessionmaker[Session], clock: Clock, attempt: AttemptRecord, exc: stripe.StripeError
) -> None:
    log.warning("SetupIntent create failed: %s (HTTP %s)", type(exc).__name__, exc.http_status)
    record_attempt(
        sessions,
        clock,
        attempt.with_outcome(
            status="error",
            error_code=exc.code or type(exc).__name__,
            error_message=f"HTTP {exc.http_status}" if exc.http_status else None,
        ),
    )
