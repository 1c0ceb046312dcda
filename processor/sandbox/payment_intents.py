"""PaymentIntents: create (off-session with confirm), confirm (server or Stripe.js),
retrieve, update, cancel, list. What an attempt ends in lives in `payment_outcomes`.
"""

from __future__ import annotations

from processor.sandbox import cards, intents, listing
from processor.sandbox import payment_outcomes as outcomes
from processor.sandbox.cards import TestCard
from processor.sandbox.context import Call
from processor.sandbox.currencies import validate_amount
from processor.sandbox.errors import SandboxError, invalid_request, unexpected_state
from processor.sandbox.ids import client_secret, new_id
from processor.sandbox.intent_updates import read_shared_update
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import (
    Params,
    as_bool,
    as_choice,
    as_int,
    as_str,
    merge_metadata,
    missing_param,
    reject_unknown,
)

CONFIRM_PARAMS = frozenset(
    {
        "payment_method",
        "confirmation_token",
        "return_url",
        "use_stripe_sdk",
        "off_session",
        "setup_future_usage",
        "mandate_data",
        "payment_method_data",
        "payment_method_options",
        "error_on_requires_action",
        "receipt_email",
        "shipping",
        "expand",
        "capture_method",
        "allowed_payment_method_types",
        "radar_options",
    }
)
CREATE_PARAMS = CONFIRM_PARAMS | {
    "amount",
    "currency",
    "customer",
    "customer_account",
    "confirm",
    "automatic_payment_methods",
    "confirmation_method",
    "description",
    "metadata",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "excluded_payment_method_types",
    "on_behalf_of",
    "transfer_data",
    "transfer_group",
    "application_fee_amount",
    "payment_method_configuration",
}
UPDATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "customer",
        "description",
        "metadata",
        "payment_method",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "expand",
        "payment_method_options",
    }
)
UPDATED_TEXTS = (
    "description",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
)
LIST_PARAMS = frozenset(
    {"customer", "created", "limit", "starting_after", "ending_before", "expand"}
)
USAGES = ("off_session", "on_session")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


def _off_session(params: Params) -> bool:
    value = params.get("off_session")
    if value in (None, "", "false"):
        return False
    if value in ("true", "one_off", "recurring"):
        return True
    raise invalid_request(
        "Invalid off_session: must be a boolean, one_off or recurring", param="off_session"
    )


# What a new PaymentIntent's `payment_method_options.card` says when nothing was asked.
CARD_OPTIONS = {
    "installments": None,
    "mandate_options": None,
    "network": None,
    "request_three_d_secure": "automatic",
}


def create(call: Call) -> StripeObject:
    params = call.params
    types = intents.payment_method_types(call, params)
    reject_unknown(params, CREATE_PARAMS | {"payment_method_types"})
    amount = as_int(params, "amount", required=True)
    currency = (as_str(params, "currency") or "").lower()
    if not currency:
        raise missing_param("currency")
    assert amount is not None
    validate_amount(amount, currency)
    confirm = bool(as_bool(params, "confirm", False))
    off_session = _off_session(params)
    _refuse_confirm_params_without_confirm(params, confirm=confirm, off_session=off_session)
    intent = _new_intent(call, params, amount, currency, types)
    explicit = as_str(params, "payment_method")
    if explicit and not confirm:
        intents.set_payment_method(intent, intents.payment_method_param(call, params))
    if confirm:
        intents.check_confirmable(call, intent, params, off_session=off_session)
    call.store.add(intent)
    call.emit("payment_intent.created", intent)
    if confirm:
        _confirm(call, intent, params, off_session=off_session)
    return intents.view(call, intent)


def _refuse_confirm_params_without_confirm(
    params: Params, *, confirm: bool, off_session: bool
) -> None:
    if off_session and not confirm:
        raise invalid_request(
            "You can only pass in `off_session` when `confirm` is set to true.",
            param="off_session",
        )
    for name in ("return_url", "mandate_data", "error_on_requires_action", "confirmation_token"):
        if name in params and not confirm:
            raise invalid_request(
                f"You can only pass in `{name}` when `confirm` is set to true.", param=name
            )


def _new_intent(
    call: Call, params: Params, amount: int, currency: str, types: list[str] | None
) -> StripeObject:
    """A PaymentIntent in `requires_payment_method`, every field of Stripe's schema present."""
    customer_id = intents.customer_param(call, params)
    usage = as_choice(params, "setup_future_usage", USAGES)
    intent_id = new_id("pi")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "allowed_payment_method_types": None,
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": intents.automatic_payment_methods(call, params, types),
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": as_choice(params, "capture_method", CAPTURE_METHODS)
        or "automatic_async",
        "client_secret": client_secret(intent_id),
        "confirmation_method": as_str(params, "confirmation_method") or "automatic",
        "created": call.now,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": as_str(params, "description"),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": dict(CARD_OPTIONS)},
        "payment_method_types": types or ["card", "sepa_debit"],
        "payment_record": None,
        "processing": None,
        "receipt_email": as_str(params, "receipt_email"),
        "review": None,
        "setup_future_usage": usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": as_str(params, "statement_descriptor"),
        "statement_descriptor_suffix": as_str(params, "statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def confirm(call: Call) -> StripeObject:
    params = call.params
    intents.reject_payment_method_types(call, params)
    reject_unknown(params, intents.accepted(call, CONFIRM_PARAMS))
    intent = intents.find_for_client(call, "payment_intent")
    off_session = _off_session(params)
    if off_session and call.publishable:
        raise invalid_request(
            "`off_session` cannot be used with a publishable key.", param="off_session"
        )
    _confirm(call, intent, params, off_session=off_session)
    return intents.view(call, intent)


def _confirm(call: Call, intent: StripeObject, params: Params, *, off_session: bool) -> None:
    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state("payment_intent", intent["id"], intent["status"], "confirm")
    usage = as_choice(params, "setup_future_usage", USAGES)
    method = intents.choose_payment_method(call, intent, params, off_session=off_session)
    if usage is not None:
        intent["setup_future_usage"] = usage
    intent["payment_method"] = method["id"]
    intent["last_payment_error"] = None
    if method["type"] == "sepa_debit":
        outcomes.start_processing(call, intent, method)
        return
    card: TestCard = method["_card"]
    decline = outcomes.decline_before_authentication(card, method, off_session)
    if decline is not None:
        outcomes.fail(call, intent, method, decline, raise_error=True)
    if card.three_d_secure and not off_session:
        if as_bool(params, "error_on_requires_action", False):
            outcomes.fail(call, intent, method, cards.AUTH_REQUIRED, raise_error=True)
        intents.require_action(call, intent, method)
        return
    outcomes.charge_after_authentication(call, intent, method, raise_error=True)


def retrieve(call: Call) -> StripeObject:
    return intents.retrieve(call, "payment_intent")


def update(call: Call) -> StripeObject:
    params = call.params
    types = intents.payment_method_types(call, params)
    reject_unknown(params, UPDATE_PARAMS | {"payment_method_types"})
    intent = call.store.require("payment_intent", call.path_args["id"])
    if intent["status"] not in (
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
    ):
        raise unexpected_state("payment_intent", intent["id"], intent["status"], "update")
    # Every check comes before the first change: a refused update leaves the intent as it was.
    usage = as_choice(params, "setup_future_usage", USAGES)
    amount = as_int(params, "amount")
    currency = (as_str(params, "currency") or intent["currency"]).lower()
    if amount is not None or "currency" in params:
        validate_amount(amount if amount is not None else intent["amount"], currency)
    shared = read_shared_update(call, params, intent, types)
    texts = {name: as_str(params, name) for name in UPDATED_TEXTS if name in params}
    intent.update(texts, currency=currency)
    if amount is not None:
        intent["amount"] = amount
    if "setup_future_usage" in params:
        intent["setup_future_usage"] = usage
    intent["last_payment_error"] = None
    return shared.apply(call, intent)


def cancel(call: Call) -> StripeObject:
    intent = intents.to_cancel(call, "payment_intent")
    if intent["status"] not in CANCELABLE:
        raise SandboxError(
            400,
            "invalid_request_error",
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}."
            " Only a PaymentIntent with one of the following statuses may be canceled: "
            + ", ".join(CANCELABLE)
            + ".",
            code="payment_intent_unexpected_state",
            payment_intent=intents.view(call, intent),
        )
    reason = as_choice(call.params, "cancellation_reason", CANCELLATION_REASONS)
    return intents.mark_canceled(call, intent, reason, canceled_at=call.now)


def list_route(call: Call) -> StripeObject:
    reject_unknown(call.params, LIST_PARAMS)
    customer_id = as_str(call.params, "customer")
    items = (
        i
        for i in call.store.newest_first("payment_intent")
        if customer_id is None or i["customer"] == customer_id
    )
    return listing.page(call, items, "/v1/payment_intents", kind_label="payment_intent")
