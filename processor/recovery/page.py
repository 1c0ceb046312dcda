"""What the recovery page may do with a link: read its case, hand the browser the PaymentIntent's
client secret, confirm the same PaymentIntent with a new method, and send a fresh link.

The case is only ever closed by the `payment_intent.succeeded` webhook; nothing here marks it
recovered, whatever the browser reports. Stripe is reached through the client passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from sqlalchemy import func, select

from processor.db.engine import unit_of_work
from processor.db.models import Notification, RecoveryCase
from processor.errors import InvalidInput, PaymentDeclined, ProcessorError, StripeUnavailable
from processor.recovery.links import LinkExpired, LinkInvalid, read_link
from processor.recovery.outbox import queue_notification
from processor.recovery.summary import CaseSummary, load_case_summary
from processor.stripe_gateway import declined, ref_id, require_confirmation_token_id, value_of

if TYPE_CHECKING:
    from processor.runtime import Runtime

FRESH_LINK_KIND = "fresh_link"
# One fresh link per case per interval, and a few a day: enough for a person, useless for abuse.
FRESH_LINK_INTERVAL = timedelta(minutes=10)
FRESH_LINKS_PER_DAY = 5
# Statuses in which the customer can still act on the PaymentIntent from the page.
ACTIONABLE_STATUSES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action"}
)
UNAVAILABLE_MESSAGE = "We could not reach our payment provider. Please try again in a moment."


class CaseClosed(InvalidInput):
    """The case is recovered or canceled: there is nothing left to pay."""

    code = "case_closed"

    def __init__(self, status: str) -> None:
        super().__init__(
            "This payment is already complete."
            if status == "recovered"
            else "This payment was canceled: there is nothing to pay."
        )
        self.status = status


class FreshLinkLimited(InvalidInput):
    """Too many fresh links asked for this case lately."""

    code = "rate_limited"

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("A new link was sent recently. Please check your inbox.")
        self.retry_after_seconds = max(1, int(retry_after.total_seconds()))


@dataclass(frozen=True)
class LinkedCase:
    """The case a genuine link names, and whether the link itself has expired."""

    case: CaseSummary
    expiry: LinkExpired | None = None

    @property
    def expired(self) -> bool:
        return self.expiry is not None


@dataclass(frozen=True)
class IntentForPage:
    """What the browser needs to act on the PaymentIntent (`client_secret` only if it can)."""

    status: str
    client_secret: str | None
    payment_method_id: str | None


def open_link(deps: Runtime, token: str) -> LinkedCase:
    """The case behind `token`; `LinkInvalid` for a forged token or an unknown case."""
    settings = deps.settings
    try:
        case_id = read_link(
            token, secret_key=settings.secret_key, ttl=settings.recovery_link_ttl, clock=deps.clock
        )
        expiry = None
    except LinkExpired as exc:
        case_id, expiry = exc.case_id, exc
    with deps.sessions() as session:
        case = load_case_summary(session, case_id)
    if case is None:
        raise LinkInvalid("This link is not valid.")
    return LinkedCase(case=case, expiry=expiry)


def usable_case(linked: LinkedCase) -> CaseSummary:
    """The case, if the link still works and there is something to pay."""
    if not linked.case.is_open:
        raise CaseClosed(linked.case.status)
    if linked.expiry is not None:
        raise linked.expiry
    return linked.case


def intent_for_page(deps: Runtime, case: CaseSummary) -> IntentForPage:
    """The PaymentIntent as the browser may see it: its client secret while it can be paid."""
    intent = _stripe_call(lambda: deps.stripe.v1.payment_intents.retrieve(case.payment_intent_id))
    status = str(intent.status)
    if status == "canceled":
        raise CaseClosed("canceled")
    method = case.payment_method_id or ref_id(value_of(intent.last_payment_error, "payment_method"))
    secret = intent.client_secret if status in ACTIONABLE_STATUSES else None
    return IntentForPage(status=status, client_secret=secret, payment_method_id=method)


def confirm_with_confirmation_token(
    deps: Runtime,
    case: CaseSummary,
    *,
    confirmation_token_id: object,
    return_url: str,
) -> IntentForPage:
    """Confirm the same PaymentIntent with the method the Payment Element collected, saving it
    for later off-session charges; the browser handles any next action with the answer."""
    token = require_confirmation_token_id(confirmation_token_id)
    params: dict[str, Any] = {
        "confirmation_token": token,
        "return_url": return_url,
        "setup_future_usage": "off_session",
        "use_stripe_sdk": True,
    }
    # The token is single use: a resent request replays Stripe's first answer.
    options = {"idempotency_key": f"recover:{case.id}:{token}"}
    intent = _stripe_call(
        lambda: deps.stripe.v1.payment_intents.confirm(
            case.payment_intent_id,
            params,  # type: ignore[arg-type]
            options,  # type: ignore[arg-type]
        )
    )
    status = str(intent.status)
    if status == "requires_payment_method":
        error = intent.last_payment_error
        raise PaymentDeclined(
            value_of(error, "message") or "Your payment method was declined.",
            code=value_of(error, "code"),
            decline_code=value_of(error, "decline_code"),
        )
    return IntentForPage(
        status=status,
        client_secret=intent.client_secret if status == "requires_action" else None,
        payment_method_id=ref_id(intent.payment_method),
    )


def request_fresh_link(deps: Runtime, linked: LinkedCase) -> str | None:
    """Queue an email with a new link to the address on file; the masked address, if known.

    Rate-limited per case under the case's row lock, so two clicks never queue two emails.
    """
    if not linked.case.is_open:
        raise CaseClosed(linked.case.status)
    if not linked.expired:
        raise InvalidInput("This link still works.", code="link_still_valid")
    case_id = linked.case.id
    now = deps.clock()
    with unit_of_work(deps.sessions) as session:
        session.execute(select(RecoveryCase.id).where(RecoveryCase.id == case_id).with_for_update())
        sent_times = list(
            session.scalars(
                select(Notification.created_at)
                .where(
                    Notification.case_id == case_id,
                    Notification.kind == FRESH_LINK_KIND,
                    Notification.created_at > now - timedelta(days=1),
                )
                .order_by(Notification.created_at)
            )
        )
        if sent_times and now - sent_times[-1] < FRESH_LINK_INTERVAL:
            raise FreshLinkLimited(sent_times[-1] + FRESH_LINK_INTERVAL - now)
        if len(sent_times) >= FRESH_LINKS_PER_DAY:
            raise FreshLinkLimited(sent_times[0] + timedelta(days=1) - now)
        sequence = 1 + (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.case_id == case_id, Notification.kind == FRESH_LINK_KIND)
            )
            or 0
        )
        if not queue_notification(
            session,
            case_id=case_id,
            kind=FRESH_LINK_KIND,
            sequence=sequence,
            dedup_key=f"case:{case_id}:fresh:{sequence}",
            due_at=now,
            now=now,
        ):
            raise FreshLinkLimited(FRESH_LINK_INTERVAL)
    contact = linked.case.contact
    return mask_address(contact.email) if contact and contact.email else None


def mask_address(address: str) -> str:
    """ "ada.lovelace@example.com" -> "a•••@example.com": enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


Answer = TypeVar("Answer")


def _stripe_call(call: Callable[[], Answer]) -> Answer:
    try:
        return call()
    except stripe.CardError as exc:
        raise declined(exc) from exc
    except stripe.InvalidRequestError as exc:
        if exc.param == "confirmation_token" or exc.code == "payment_intent_unexpected_state":
            raise InvalidInput(
                "These payment details can no longer be used. Please enter them again.",
                code=exc.code or "invalid_request",
            ) from exc
        raise ProcessorError("Stripe refused the request.") from exc
    except stripe.StripeError as exc:
        raise StripeUnavailable(UNAVAILABLE_MESSAGE) from exc
