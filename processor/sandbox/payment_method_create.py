"""`POST /v1/payment_methods`: a card or SEPA Direct Debit method made from its details.

Cards come from a test token (`card[token]=tok_visa`) or a test number; IBANs follow the
SEPA test table. The method is not attached: Stripe sends no event for its creation.
"""

from __future__ import annotations

from processor.sandbox import cards
from processor.sandbox.confirmation_tokens import method_from
from processor.sandbox.context import Call
from processor.sandbox.errors import SandboxError, invalid_request
from processor.sandbox.payment_methods import build_card
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import as_dict, as_str, merge_metadata, missing_param, reject_unknown

CREATE_PARAMS = frozenset(
    {
        "allow_redisplay",
        "billing_details",
        "card",
        "expand",
        "metadata",
        "radar_options",
        "sepa_debit",
        "type",
    }
)
TYPES = frozenset({"card", "sepa_debit"})
WRAPPER = "payment_method_data"


def create(call: Call) -> StripeObject:
    params = call.params
    reject_unknown(params, CREATE_PARAMS)
    kind = as_str(params, "type")
    if kind is None:
        raise missing_param("type")
    if kind not in TYPES:
        raise invalid_request(
            f"Invalid type: the sandbox makes PaymentMethods of type {' or '.join(sorted(TYPES))}",
            param="type",
        )
    metadata = merge_metadata({}, params.get("metadata"))
    token = as_str(as_dict(params, "card"), "token") if kind == "card" else None
    if token is not None:
        method = _from_token(call, token, params)
    else:
        data = {name: params[name] for name in ("type", kind, "billing_details") if name in params}
        if "allow_redisplay" in params:
            data["allow_redisplay"] = params["allow_redisplay"]
        method = _from_details(call, data)
    method["metadata"] = metadata
    call.store.add(method)
    return public(method)


def _from_details(call: Call, data: dict[str, object]) -> StripeObject:
    """The confirmation tokens' builder, its errors naming this endpoint's own parameters."""
    try:
        return method_from(call, {"payment_method_data": data}, TYPES)
    except SandboxError as error:
        if error.param and error.param.startswith(WRAPPER):
            inner = error.param[len(WRAPPER) :]
            unwrapped = inner[1:].replace("]", "", 1) if inner.startswith("[") else inner
            error.message = error.message.replace(error.param, unwrapped)
            error.param = unwrapped
        raise


def _from_token(call: Call, token: str, params: dict[str, object]) -> StripeObject:
    """`tok_visa`, `tok_chargeDeclined`…: the card the same-named `pm_card_` id stands for."""
    card = cards.CARDS.get(token.removeprefix("tok_")) if token.startswith("tok_") else None
    if card is None:
        raise invalid_request(
            f"No such token: '{token}'", param="card[token]", code="resource_missing"
        )
    return build_card(
        call,
        card,
        cvc_checked=True,
        details=params.get("billing_details"),
        allow_redisplay=as_str(params, "allow_redisplay") or "unspecified",
    )
