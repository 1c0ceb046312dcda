"""The table from Stripe event type to handler: everything the receiver reacts to, in one place.

A type that is not listed is stored as `ignored` and acknowledged, so subscribing the endpoint
to more events than we use costs a row, not a retry storm.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from processor.webhooks.envelope import Event
from processor.webhooks.handlers import payment_intents, payment_methods, setup_intents

Handler = Callable[[Session, Event, datetime], None]

HANDLERS: dict[str, Handler] = {
    # Saving a method: the setup attempt's state, and the method a success names
    # (the checkout endpoint writes the same rows; events may arrive before it answers).
    "setup_intent.succeeded": setup_intents.on_setup_intent_succeeded,
    "setup_intent.setup_failed": setup_intents.on_setup_intent_setup_failed,
    "setup_intent.requires_action": setup_intents.on_setup_intent_requires_action,
    "setup_intent.canceled": setup_intents.on_setup_intent_canceled,
    # The saved method itself: its details arrive with `attached`; `detached` is final.
    "payment_method.attached": payment_methods.on_payment_method_attached,
    "payment_method.detached": payment_methods.on_payment_method_detached,
    # Off-session charges and their recovery: a failure opens or updates the case and
    # queues its first email; success or cancellation closes it and stops the reminders.
    "payment_intent.payment_failed": payment_intents.on_payment_intent_payment_failed,
    "payment_intent.succeeded": payment_intents.on_payment_intent_succeeded,
    "payment_intent.canceled": payment_intents.on_payment_intent_canceled,
}

HANDLED_TYPES: tuple[str, ...] = tuple(HANDLERS)


def handler_for(event_type: str) -> Handler | None:
    return HANDLERS.get(event_type)
