"""SetupIntents: create (optionally confirming), confirm, retrieve, update, cancel, list.

Outcomes follow STRIPE.md 2.7: frictionless success, `requires_action` for 3-D Secure,
or a 402 `card_error` with the intent embedded and the intent back in
`requires_payment_method`.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox import bank_methods, intents, listing
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, unexpected_state
from processor.sandbox.ids import client_secret, new_id
from processor.sandbox.intent_updates import read_shared_update
from processor.sandbox.payment_methods import attach, decline_error
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import (
    Params,
    as_bool,
    as_choice,
    as_dict,
    as_str,
    merge_metadata,
    reject_unknown,
)

CONFIRM_PARAMS = frozenset(
    {
        "allowed_payment_method_types",
        "confirmation_token",
        "expand",
        "mandate_data",
        "payment_method",
        "payment_method_data",
        "payment_method_options",
        "return_url",
        "use_stripe_sdk",
    }
)
CREATE_PARAMS = CONFIRM_PARAMS | {
    "confirm",
    "customer",
    "customer_account",
    "automatic_payment_methods",
    "description",
    "metadata",
    "usage",
    "single_use",
    "flow_directions",
    "attach_to_self",
    "on_behalf_of",
    "payment_method_configuration",
    "excluded_payment_method_types",
}
UPDATE_PARAMS = frozenset(
    {
        "customer",
        "description",
        "metadata",
        "payment_method",
        "expand",
        "payment_method_options",
        "flow_directions",
        "attach_to_self",
    }
)
LIST_PARAMS = frozenset(
    {
        "customer",
        "payment_method",
        "created",
        "limit",
        "starting_after",
        "ending_before",
        "expand",
        "attach_to_self",
    }
)
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
AUTH_FAILED_MESSAGE = (
    "The latest attempt to set up the payment method has failed because authentication failed."
)


def create(call: Call) -> StripeObject:
    params = call.params
    types = intents.payment_method_types(call, params)
    reject_unknown(params, CREATE_PARAMS | {"payment_method_types"})
    confirm = as_bool(params, "confirm", False)
    for name in ("return_url", "mandate_data", "confirmation_token"):
        if name in params and not confirm:
            raise invalid_request(
                f"You can only pass in `{name}` when `confirm` is set to true.", param=name
            )
    customer_id = intents.customer_param(call, params)
    usage = as_choice(params, "usage", ("off_session", "on_session")) or "off_session"
    intent_id = new_id("seti")
    intent: StripeObject = {
        "id": intent_id,
        "object": "setup_intent",
        "allowed_payment_method_types": None,
        "application": None,
        "automatic_payment_methods": intents.automatic_payment_methods(call, params, types),
        "cancellation_reason": None,
        "client_secret": client_secret(intent_id),
        "created": call.now,
        "customer": customer_id,
        "customer_account": None,
        "description": as_str(params, "description"),
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": types or ["card", "sepa_debit"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
    }
    explicit = as_str(params, "payment_method")
    if explicit and not confirm:
        intents.set_payment_method(intent, intents.payment_method_param(call, params))
    if confirm:
        intents.check_confirmable(call, intent, params, off_session=False)
        bank_methods.check_setup(call, params)
    call.store.add(intent)
    call.emit("setup_intent.created", intent)
    if confirm:
        _confirm(call, intent, params)
    return intents.view(call, intent)


def confirm(call: Call) -> StripeObject:
    params = call.params
    intents.reject_payment_method_types(call, params)
    reject_unknown(params, intents.accepted(call, CONFIRM_PARAMS))
    intent = intents.find_for_client(call, "setup_intent")
    bank_methods.check_setup(call, params)
    _confirm(call, intent, params)
    return intents.view(call, intent)


def _confirm(call: Call, intent: StripeObject, params: Params) -> None:
    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state("setup_intent", intent["id"], intent["status"], "confirm")
    method = intents.choose_payment_method(call, intent, params, off_session=False)
    if as_dict(params, "mandate_data"):
        intent["_mandate_data"] = params["mandate_data"]
    intent["latest_attempt"] = _attempt(call, intent, method)
    intent["last_setup_error"] = None
    if method["type"] in bank_methods.BANK_TYPES:
        bank_methods.start_redirect(call, intent, method)
        return
    card = method.get("_card")
    if card is not None and card.refused is not None:
        error = decline_error(card.refused)
        fail(call, intent, method, error.error_object())
        error.extra = {"setup_intent": intents.view(call, intent), "payment_method": public(method)}
        raise error
    if card is not None and card.three_d_secure:
        intents.require_action(call, intent, method)
        return
    succeed(call, intent, method)


def _attempt_details(method: StripeObject) -> dict[str, Any]:
    """What the attempt records of the method: a card's brand, checks and expiry."""
    if method["type"] != "card":
        return {"type": method["type"], method["type"]: {}}
    card = method["card"]
    shown = ("brand", "checks", "country", "exp_month", "exp_year", "fingerprint", "funding")
    return {
        "type": "card",
        "card": {
            **{name: card[name] for name in shown},
            "last4": card["last4"],
            "network": card["brand"],
            "three_d_secure": None,
            "wallet": None,
        },
    }


def _attempt(call: Call, intent: StripeObject, method: StripeObject) -> str:
    attempt = {
        "id": new_id("setatt"),
        "object": "setup_attempt",
        "application": None,
        "created": call.now,
        "customer": intent["customer"],
        "customer_account": None,
        "flow_directions": None,
        "livemode": False,
        "on_behalf_of": None,
        "payment_method": method["id"],
        "payment_method_details": _attempt_details(method),
        "setup_error": None,
        "setup_intent": intent["id"],
        "status": "requires_confirmation",
        "usage": intent["usage"],
    }
    call.store.add(attempt)
    return attempt["id"]


def succeed(call: Call, intent: StripeObject, method: StripeObject) -> None:
    if intent["customer"]:
        attach(call, method, intent["customer"])
    method["_set_up"] = True
    if method["type"] == "sepa_debit":
        intent["mandate"] = new_id("mandate")
    mark_succeeded(call, intent, method)


def mark_succeeded(call: Call, intent: StripeObject, method: StripeObject) -> None:
    """The set-up is done with `method`: no next action, no error, its attempt succeeded."""
    intent.update(
        status="succeeded", payment_method=method["id"], next_action=None, last_setup_error=None
    )
    _set_attempt_status(call, intent, "succeeded")
    call.store.touch()
    call.emit("setup_intent.succeeded", intent)


def fail(call: Call, intent: StripeObject, method: StripeObject, error: dict[str, Any]) -> None:
    error = {**error, "payment_method": public(method)}
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        next_action=None,
        last_setup_error=error,
    )
    _set_attempt_status(call, intent, "failed", error)
    call.store.touch()
    call.emit("setup_intent.setup_failed", intent)


def fail_authentication(call: Call, intent: StripeObject, method: StripeObject) -> None:
    fail(
        call,
        intent,
        method,
        {
            "type": "invalid_request_error",
            "code": "setup_intent_authentication_failure",
            "doc_url": "https://stripe.com/docs/error-codes/setup-intent-authentication-failure",
            "message": AUTH_FAILED_MESSAGE,
        },
    )


def _set_attempt_status(
    call: Call, intent: StripeObject, status: str, error: dict[str, Any] | None = None
) -> None:
    attempt = call.store.get("setup_attempt", intent.get("latest_attempt"))
    if attempt is not None:
        attempt["status"] = status
        attempt["setup_error"] = error


def retrieve(call: Call) -> StripeObject:
    return intents.retrieve(call, "setup_intent")


def update(call: Call) -> StripeObject:
    types = intents.payment_method_types(call, call.params)
    reject_unknown(call.params, UPDATE_PARAMS | {"payment_method_types"})
    intent = call.store.require("setup_intent", call.path_args["id"])
    if intent["status"] in ("succeeded", "canceled"):
        raise unexpected_state("setup_intent", intent["id"], intent["status"], "update")
    params = call.params
    # Every check comes before the first change: a refused update leaves the intent as it was.
    shared = read_shared_update(call, params, intent, types)
    description = as_str(params, "description")
    if "description" in params:
        intent["description"] = description
    return shared.apply(call, intent)


def cancel(call: Call) -> StripeObject:
    intent = intents.to_cancel(call, "setup_intent")
    if intent["status"] not in CANCELABLE:
        raise unexpected_state("setup_intent", intent["id"], intent["status"], "cancel")
    reason = as_choice(
        call.params, "cancellation_reason", ("abandoned", "duplicate", "requested_by_customer")
    )
    return intents.mark_canceled(call, intent, reason)


def list_route(call: Call) -> StripeObject:
    reject_unknown(call.params, LIST_PARAMS)
    customer_id = as_str(call.params, "customer")
    method_id = as_str(call.params, "payment_method")
    items = (
        i
        for i in call.store.newest_first("setup_intent")
        if (customer_id is None or i["customer"] == customer_id)
        and (method_id is None or i["payment_method"] == method_id)
    )
    return listing.page(call, items, "/v1/setup_intents", kind_label="setup_intent")
