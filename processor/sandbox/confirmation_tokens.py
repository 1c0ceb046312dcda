"""ConfirmationTokens: the client-side create (publishable key), the test helper, retrieve.

A token holds the PaymentMethod it will create (`_method`, not stored until used) and a
preview of it. It is single use and expires 12 hours after creation.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox import bank_methods, cards
from processor.sandbox.context import Call
from processor.sandbox.errors import SandboxError, invalid_request
from processor.sandbox.ids import new_id
from processor.sandbox.payment_methods import build_card, build_sepa, from_magic_id
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import (
    Params,
    as_choice,
    as_dict,
    as_str,
    missing_param,
    reject_unknown,
)

LIFETIME_SECONDS = 12 * 60 * 60
HELPER_PARAMS = frozenset(
    {
        "payment_method",
        "payment_method_data",
        "payment_method_options",
        "return_url",
        "setup_future_usage",
        "shipping",
        "expand",
    }
)
CLIENT_PARAMS = HELPER_PARAMS | {"mandate_data", "key", "_stripe_version", "client_context"}
USAGES = ("off_session", "on_session")
HELPER_TYPES = frozenset({"sepa_debit"}) | bank_methods.BANK_TYPES
CLIENT_TYPES = frozenset({"card", "sepa_debit"}) | bank_methods.BANK_TYPES


def create_with_helper(call: Call) -> StripeObject:
    """`POST /v1/test_helpers/confirmation_tokens` (secret key; no raw card numbers)."""
    reject_unknown(call.params, HELPER_PARAMS)
    return _create(call, HELPER_TYPES)


def create_client_side(call: Call) -> StripeObject:
    """`POST /v1/confirmation_tokens` as Stripe.js sends it (publishable key)."""
    reject_unknown(call.params, CLIENT_PARAMS)
    return _create(call, CLIENT_TYPES)


def retrieve(call: Call) -> StripeObject:
    reject_unknown(call.params, frozenset({"expand"}))
    return public(call.store.require("confirmation_token", call.path_args["id"]))


def _create(call: Call, allowed_types: frozenset[str]) -> StripeObject:
    params = call.params
    method = method_from(call, params, allowed_types)
    usage = as_choice(params, "setup_future_usage", USAGES)
    created = call.now
    token: StripeObject = {
        "id": new_id("ctoken"),
        "object": "confirmation_token",
        "created": created,
        "expires_at": created + LIFETIME_SECONDS,
        "livemode": False,
        "mandate_data": _mandate(params.get("mandate_data")),
        "metadata": {},
        "payment_intent": None,
        "payment_method_options": as_dict(params, "payment_method_options") or None,
        "payment_method_preview": _preview(method),
        "return_url": as_str(params, "return_url"),
        "setup_future_usage": usage,
        "setup_intent": None,
        "shipping": as_dict(params, "shipping") or None,
        "use_stripe_sdk": True,
        "_method": method,
    }
    call.store.add(token)
    return public(token)


def _preview(method: StripeObject) -> dict[str, Any]:
    shown = public(method)
    preview = {
        key: shown[key] for key in ("type", "billing_details", "allow_redisplay", "customer")
    }
    preview["customer_account"] = None
    preview[method["type"]] = shown[method["type"]]
    return preview


def _mandate(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    acceptance = data.get("customer_acceptance")
    if not isinstance(acceptance, dict):
        return None
    online = acceptance.get("online") if isinstance(acceptance.get("online"), dict) else None
    return {
        "customer_acceptance": {
            "online": {
                "ip_address": online.get("ip_address"),
                "user_agent": online.get("user_agent"),
            }
            if online
            else None,
            "type": acceptance.get("type", "online"),
        }
    }


def method_from(call: Call, params: Params, allowed_types: frozenset[str]) -> StripeObject:
    existing = as_str(params, "payment_method")
    data = as_dict(params, "payment_method_data")
    if existing:
        magic = from_magic_id(call, existing)
        if magic is not None:
            return magic
        method = call.store.require("payment_method", existing, param="payment_method")
        # A saved method: the token refers to it rather than to a copy.
        return {**method, "_existing": method["id"]}
    if not data:
        raise missing_param("payment_method_data")
    kind = as_str(data, "type")
    if kind is None:
        raise missing_param("payment_method_data[type]")
    if kind not in allowed_types:
        raise invalid_request(
            f"Invalid payment_method_data[type]: {kind} is not supported here"
            + (" (use payment_method=pm_card_* for cards)" if kind == "card" else ""),
            param="payment_method_data[type]",
        )
    redisplay = as_str(data, "allow_redisplay") or "unspecified"
    if kind in bank_methods.BANK_TYPES:
        return bank_methods.build_bank_method(call, kind, data, allow_redisplay=redisplay)
    if kind == "sepa_debit":
        iban = as_str(as_dict(data, "sepa_debit"), "iban")
        if iban is None:
            raise missing_param("payment_method_data[sepa_debit][iban]")
        if not cards.iban_valid(iban):
            raise invalid_request(
                "The provided IBAN is invalid.",
                param="payment_method_data[sepa_debit][iban]",
                code="invalid_bank_account_iban",
            )
        return build_sepa(
            call,
            cards.iban_for(iban),
            details=data.get("billing_details"),
            allow_redisplay=redisplay,
        )
    return _card_from(call, data, redisplay)


def _card_error(code: str, message: str, param: str) -> SandboxError:
    return SandboxError(402, "card_error", message, code=code, param=param)


def _card_from(call: Call, data: Params, redisplay: str) -> StripeObject:
    card_data = as_dict(data, "card")
    number = (as_str(card_data, "number") or "").replace(" ", "")
    if not number:
        raise missing_param("payment_method_data[card][number]")
    if not cards.luhn_valid(number):
        raise _card_error("incorrect_number", "Your card number is incorrect.", "number")
    now = call.store.now_datetime()
    month_text = as_str(card_data, "exp_month") or ""
    year_text = as_str(card_data, "exp_year") or ""
    if not month_text.isdigit() or not 1 <= int(month_text) <= 12:
        raise _card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month"
        )
    if not year_text.isdigit():
        raise _card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year"
        )
    month, year = int(month_text), int(year_text)
    if year < 100:
        year += 2000
    if year < now.year or year > now.year + 50:
        raise _card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year"
        )
    if year == now.year and month < now.month:
        raise _card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month"
        )
    cvc = as_str(card_data, "cvc")
    if cvc is not None and not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise _card_error("invalid_cvc", "Your card's security code is invalid.", "cvc")
    return build_card(
        call,
        cards.card_for_number(number),
        exp_month=month,
        exp_year=year,
        cvc_checked=cvc is not None,
        details=data.get("billing_details"),
        allow_redisplay=redisplay,
        metadata=data.get("metadata"),
    )


def consume(call: Call, token_id: str, *, intent: StripeObject) -> StripeObject:
    """Mark the token used by `intent` and answer the PaymentMethod it carries (now stored)."""
    token = call.store.require("confirmation_token", token_id, param="confirmation_token")
    check_usable(call, token)
    token[intent["object"]] = intent["id"]
    method = token["_method"]
    if "_existing" in method:
        return call.store.require("payment_method", method["_existing"], param="confirmation_token")
    method["created"] = call.now
    return call.store.add(method)


def check_usable(call: Call, token: StripeObject) -> None:
    """Single use, and only until `expires_at`."""
    if token["setup_intent"] or token["payment_intent"]:
        raise invalid_request(
            "This ConfirmationToken has already been used to confirm a "
            + ("SetupIntent." if token["setup_intent"] else "PaymentIntent.")
            + " Create a new ConfirmationToken to confirm again.",
            param="confirmation_token",
            code="confirmation_token_already_used",
        )
    if call.now >= token["expires_at"]:
        raise invalid_request(
            "This ConfirmationToken has expired. Create a new ConfirmationToken.",
            param="confirmation_token",
            code="confirmation_token_expired",
        )
