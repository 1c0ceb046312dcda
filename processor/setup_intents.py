"""Saving a payment method: create and confirm a SetupIntent from the browser's ConfirmationToken,
and report what was saved.

A service: it never imports starlette or `processor.web`. Every attempt is written to
`setup_attempts` before the caller answers; stripe-python's exceptions become the errors of
`processor.errors` (declines carry Stripe's customer-safe message, nothing more).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from stripe.params import SetupIntentCreateParams

from processor.checkout.generated import BANK_REDIRECT_TYPES, TYPE_METADATA_KEY
from processor.clock import Clock
from processor.db.models import PaymentMethod, SetupAttempt
from processor.errors import (
    InvalidInput,
    NotFound,
    PaymentDeclined,
    ProcessorError,
    StripeUnavailable,
)
from processor.setup_records import AttemptRecord, record_attempt, record_payment_method
from processor.stripe_fields import ref_id, value_of

log = logging.getLogger(__name__)

_CONFIRMATION_TOKEN_ID = re.compile(r"^ctoken_[A-Za-z0-9_]{1,200}$")
_SETUP_INTENT_ID = re.compile(r"^seti_[A-Za-z0-9_]{1,200}$")
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


@dataclass(frozen=True)
class SavedMethod:
    id: str
    type: str | None
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    generated_from: str | None = None  # `ideal` / `bancontact` for the SEPA method they left


@dataclass(frozen=True)
class SetupOutcome:
    setup_intent_id: str
    status: str
    payment_method: SavedMethod | None
    error_code: str | None = None
    error_message: str | None = None


def create_and_confirm(
    sessions: sessionmaker[Session],
    stripe_client: stripe.StripeClient,
    clock: Clock,
    *,
    customer_id: str,
    confirmation_token_id: object,
    return_url: str,
) -> SetupStarted:
    """Create and confirm a SetupIntent for `customer_id` in one request to Stripe."""
    if not isinstance(confirmation_token_id, str) or not _CONFIRMATION_TOKEN_ID.match(
        confirmation_token_id
    ):
        raise InvalidInput(
            "confirmationTokenId must be a ConfirmationToken id (ctoken_…).",
            field="confirmationTokenId",
            code="invalid_confirmation_token",
        )
    attempt = AttemptRecord(customer_id=customer_id, confirmation_token_id=confirmation_token_id)
    params: SetupIntentCreateParams = {
        "confirm": True,
        "customer": customer_id,
        "confirmation_token": confirmation_token_id,
        "automatic_payment_methods": {"enabled": True},
        "return_url": return_url,
        "use_stripe_sdk": True,
        # Lets the webhook find the attempt row of a create whose answer was lost.
        "metadata": {"confirmation_token": confirmation_token_id},
        # The method's type tells a single-use bank method (iDEAL, Bancontact) from the rest.
        "expand": ["payment_method"],
    }
    # Keyed on the token (single use anyway) and the customer: a resent request replays
    # Stripe's first answer instead of creating a second SetupIntent.
    options = {"idempotency_key": f"setup:{customer_id}:{confirmation_token_id}"}
    try:
        intent = stripe_client.v1.setup_intents.create(params, options)  # type: ignore[arg-type]
        _mark_bank_redirect(stripe_client, intent)
    except stripe.CardError as exc:
        _record_decline(sessions, clock, attempt, exc)
        raise PaymentDeclined(
            exc.user_message or "Your payment method was declined.",
            code=exc.code,
            decline_code=value_of(exc.error, "decline_code"),
        ) from exc
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

    status = str(intent.status)
    error = value_of(intent, "last_setup_error")
    record_attempt(
        sessions,
        clock,
        attempt.with_outcome(
            setup_intent_id=intent.id,
            status=status,
            payment_method_id=ref_id(intent.payment_method),
            error_code=value_of(error, "code"),
            decline_code=value_of(error, "decline_code"),
            error_message=value_of(error, "message"),
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


def _mark_bank_redirect(stripe_client: stripe.StripeClient, intent: stripe.SetupIntent) -> None:
    """Name the bank method's type in the SetupIntent's metadata, so that its webhooks alone
    tell that the method to save is the `sepa_debit` one the bank set-up generates. The
    customer is sent to the bank only after this answer, so the mark precedes its events."""
    kind = value_of(intent.payment_method, "type")
    if kind in BANK_REDIRECT_TYPES and intent.status == "requires_action":
        stripe_client.v1.setup_intents.update(
            intent.id, {"metadata": {TYPE_METADATA_KEY: str(kind)}}
        )


def setup_outcome(
    sessions: sessionmaker[Session],
    stripe_client: stripe.StripeClient,
    clock: Clock,
    *,
    customer_id: str,
    setup_intent_id: str,
) -> SetupOutcome:
    """Where one of this customer's setups stands, and the method it saved, as we recorded it.

    Webhooks may not have arrived yet when the page asks: then Stripe is asked directly and
    what it says is recorded, so the answer never depends on webhook timing.
    """
    if not _SETUP_INTENT_ID.match(setup_intent_id):
        raise NotFound("No such setup.")
    with sessions() as session:
        attempt = session.scalar(
            select(SetupAttempt).where(SetupAttempt.setup_intent_id == setup_intent_id)
        )
        # Only setups this customer started through us are visible; others look absent.
        if attempt is None or attempt.customer_id != customer_id:
            raise NotFound("No such setup.")
        if attempt.status == "succeeded" and attempt.payment_method_type in BANK_REDIRECT_TYPES:
            # The saved method is the one the bank set-up generated, once its webhook linked it.
            stored = session.scalar(
                select(PaymentMethod).where(
                    PaymentMethod.customer_id == customer_id,
                    PaymentMethod.setup_intent_id == setup_intent_id,
                    PaymentMethod.generated_from.is_not(None),
                )
            )
        elif attempt.status == "succeeded" and attempt.payment_method_id:
            stored = session.get(PaymentMethod, attempt.payment_method_id)
        else:
            stored = None
        if stored is not None and stored.type is not None:
            return SetupOutcome(setup_intent_id, attempt.status, _saved_method(stored))

    try:
        intent = stripe_client.v1.setup_intents.retrieve(
            setup_intent_id, {"expand": ["payment_method", "latest_attempt"]}
        )
    except stripe.StripeError as exc:
        log.warning("SetupIntent retrieve failed: %s", type(exc).__name__)
        raise StripeUnavailable(UNAVAILABLE_MESSAGE) from exc
    if ref_id(intent.customer) != customer_id:
        raise NotFound("No such setup.")

    status = str(intent.status)
    method = (
        intent.payment_method if isinstance(intent.payment_method, stripe.PaymentMethod) else None
    )
    error = value_of(intent, "last_setup_error")
    record_attempt(
        sessions,
        clock,
        AttemptRecord(
            customer_id=customer_id,
            setup_intent_id=setup_intent_id,
            status=status,
            payment_method_id=ref_id(intent.payment_method),
            error_code=value_of(error, "code"),
            decline_code=value_of(error, "decline_code"),
            error_message=value_of(error, "message"),
        ),
        refreshed=True,
    )
    saved = None
    kind = value_of(method, "type")
    if kind in BANK_REDIRECT_TYPES:
        # Never saved itself; the generated method is recorded by its own webhook.
        saved = _generated_method(intent, str(kind)) if status == "succeeded" else None
    elif method is not None and status in {"succeeded", "processing"}:
        stored = record_payment_method(
            sessions, clock, method.to_dict(), setup_intent_id=setup_intent_id
        )
        saved = _saved_method(stored)
    return SetupOutcome(
        setup_intent_id,
        status,
        saved,
        error_code=value_of(error, "code"),
        error_message=value_of(error, "message"),
    )


def _generated_method(intent: stripe.SetupIntent, kind: str) -> SavedMethod | None:
    """The `sepa_debit` method a bank set-up left, as its SetupAttempt describes it."""
    details = value_of(intent, "latest_attempt", "payment_method_details", kind)
    method_id = ref_id(value_of(details, "generated_sepa_debit"))
    if method_id is None:
        return None
    last4 = value_of(details, "iban_last4")
    return SavedMethod(method_id, "sepa_debit", None, last4, None, None, generated_from=kind)


def _saved_method(row: PaymentMethod) -> SavedMethod:
    if row.type == "sepa_debit":
        return SavedMethod(
            row.id, row.type, None, row.sepa_last4, None, None, generated_from=row.generated_from
        )
    return SavedMethod(
        row.id, row.type, row.card_brand, row.card_last4, row.card_exp_month, row.card_exp_year
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
