"""What SetupIntents and PaymentIntents share: the `customer` and `payment_method` parameters,
choosing the PaymentMethod at confirm time, the `return_url` rule, client secrets, 3-D Secure
next actions, retrieve, and the publishable-key view.
"""

from __future__ import annotations

import uuid
from typing import Any

from processor.sandbox import bank_methods, confirmation_tokens, versions
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, no_such
from processor.sandbox.payment_methods import REUSED_MESSAGE, resolve
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import Params, as_bool, as_dict, as_list, as_str, reject_unknown

LABEL = {"setup_intent": "SetupIntent", "payment_intent": "PaymentIntent"}
REMOVED_PARAMS_MESSAGE = (
    "The `payment_method_types` parameter is no longer supported in API version "
    "{version}. Use `automatic_payment_methods`, `allowed_payment_method_types` or "
    "`excluded_payment_method_types` instead."
)
RETURN_URL_MESSAGE = (
    "A `return_url` must be specified because this {label} is configured to automatically "
    "accept the payment methods enabled in the Dashboard, some of which may require a full page "
    "redirect to succeed. If you do not want to accept redirect-based payment methods, set "
    "`automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods"
    "[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)
# Extra fields Stripe.js adds to its requests; accepted and ignored on client-side routes.
CLIENT_EXTRAS = frozenset(
    {
        "key",
        "client_secret",
        "_stripe_version",
        "payment_user_agent",
        "time_on_page",
        "referrer",
        "guid",
        "muid",
        "sid",
        "client_context",
        "expected_payment_method_type",
    }
)
CLIENT_FIELDS = {
    "setup_intent": (
        "id",
        "object",
        "automatic_payment_methods",
        "cancellation_reason",
        "client_secret",
        "created",
        "description",
        "last_setup_error",
        "livemode",
        "next_action",
        "payment_method",
        "payment_method_types",
        "status",
        "usage",
    ),
    "payment_intent": (
        "id",
        "object",
        "amount",
        "automatic_payment_methods",
        "canceled_at",
        "cancellation_reason",
        "capture_method",
        "client_secret",
        "confirmation_method",
        "created",
        "currency",
        "description",
        "last_payment_error",
        "livemode",
        "next_action",
        "payment_method",
        "payment_method_types",
        "processing",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "status",
    ),
}


def payment_method_types(call: Call, params: Params) -> list[str] | None:
    """The writable `payment_method_types` of versions before endive; refused from it on."""
    if "payment_method_types" not in params:
        return None
    if versions.applies(call.api_version, "payment_method_types_refused"):
        raise invalid_request(
            REMOVED_PARAMS_MESSAGE.format(version=call.api_version),
            param="payment_method_types",
            code="payment_method_types_no_longer_supported",
        )
    given = as_list(params, "payment_method_types")
    if not given or not all(isinstance(kind, str) and kind for kind in given):
        raise invalid_request(
            "Invalid array: payment_method_types", param="payment_method_types"
        )
    return [str(kind) for kind in given]


def reject_payment_method_types(call: Call, params: Params) -> None:
    """Where the parameter never existed (confirm), or is refused at this version."""
    if "payment_method_types" in params:
        payment_method_types(call, params)
        raise invalid_request(
            "Received unknown parameter: payment_method_types",
            param="payment_method_types",
            code="parameter_unknown",
        )


def accepted(call: Call, names: frozenset[str]) -> frozenset[str]:
    """`names`, plus the extras Stripe.js sends when the caller holds a publishable key."""
    return (names | CLIENT_EXTRAS) if call.publishable else names


def customer_param(call: Call, params: Params) -> str | None:
    """The `customer` parameter, checked to name an existing Customer when given."""
    customer_id = as_str(params, "customer")
    if customer_id:
        call.store.require("customer", customer_id, param="customer")
    return customer_id


def payment_method_param(call: Call, params: Params) -> StripeObject | None:
    """The usable PaymentMethod the `payment_method` parameter names, if it names one."""
    method_id = as_str(params, "payment_method")
    return resolve(call, method_id) if method_id else None


def set_payment_method(intent: StripeObject, method: StripeObject | None) -> None:
    """Attach (or clear) the PaymentMethod a later confirm will use, without confirming."""
    intent["payment_method"] = method["id"] if method else None
    intent["status"] = "requires_confirmation" if method else "requires_payment_method"


def view(call: Call, intent: StripeObject) -> StripeObject:
    """The whole intent for secret keys; the subset Stripe.js sees for publishable keys."""
    shown = public(intent)
    if not call.publishable:
        return shown
    return {key: shown.get(key) for key in CLIENT_FIELDS[intent["object"]]}


def automatic_payment_methods(
    call: Call, params: Params, types: list[str] | None
) -> dict[str, Any] | None:
    """On by default since 2023-08-16 unless types are listed, with redirects allowed unless
    told otherwise; null on intents that list their types."""
    data = as_dict(params, "automatic_payment_methods")
    if not data:
        if types is not None or not versions.applies(
            call.api_version, "automatic_payment_methods_by_default"
        ):
            return None
        return {"allow_redirects": "always", "enabled": True}
    enabled = as_bool(data, "enabled")
    if enabled is None:
        raise invalid_request(
            "Missing required param: automatic_payment_methods[enabled].",
            param="automatic_payment_methods[enabled]",
            code="parameter_missing",
        )
    redirects = as_str(data, "allow_redirects") or "always"
    if redirects not in ("always", "never"):
        raise invalid_request(
            "Invalid automatic_payment_methods[allow_redirects]: must be one of always or never",
            param="automatic_payment_methods[allow_redirects]",
        )
    return {"allow_redirects": redirects, "enabled": enabled}


def to_cancel(call: Call, kind: str) -> StripeObject:
    """The intent a `POST …/cancel` names (the route takes a reason and `expand`, nothing else)."""
    reject_unknown(call.params, frozenset({"cancellation_reason", "expand"}))
    return call.store.require(kind, call.path_args["id"])


def mark_canceled(
    call: Call, intent: StripeObject, reason: str | None, **fields: Any
) -> StripeObject:
    """Cancel the intent for `reason`, tell the merchant, and answer it."""
    intent.update(fields, status="canceled", cancellation_reason=reason, next_action=None)
    call.store.touch()
    call.emit(f"{intent['object']}.canceled", intent)
    return view(call, intent)


def record_charge(intent: StripeObject, charge: StripeObject, status: str, **amounts: int) -> None:
    """A PaymentIntent's charge went through (captured or held): it is the latest, and nothing
    is asked of the customer or stands against the intent any more."""
    intent.update(
        amounts,
        status=status,
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=None,
        payment_method=charge["payment_method"],
    )


def check_client_secret(call: Call, intent: StripeObject) -> None:
    """Publishable-key callers prove they hold the intent's client secret."""
    if not call.publishable:
        return
    given = as_str(call.params, "client_secret", required=True)
    if given != intent["client_secret"]:
        raise invalid_request(
            f"The client_secret provided does not match the client_secret associated with the "
            f"{LABEL[intent['object']]}.",
            param="client_secret",
        )


def find_for_client(call: Call, kind: str) -> StripeObject:
    intent = call.store.require(kind, call.path_args["id"])
    check_client_secret(call, intent)
    return intent


def retrieve(call: Call, kind: str) -> StripeObject:
    reject_unknown(call.params, accepted(call, frozenset({"expand"})))
    return view(call, find_for_client(call, kind))


def _token(call: Call, params: Params) -> StripeObject | None:
    token_id = as_str(params, "confirmation_token")
    if token_id is None:
        return None
    return call.store.require("confirmation_token", token_id, param="confirmation_token")


def _return_url(intent: StripeObject, params: Params, token: StripeObject | None) -> str | None:
    """The confirm call's `return_url`, else the token's, else the one the intent kept."""
    return (
        as_str(params, "return_url") or (token or {}).get("return_url") or intent.get("_return_url")
    )


def check_confirmable(
    call: Call, intent: StripeObject, params: Params, *, off_session: bool
) -> StripeObject | None:
    """Every check a confirmation makes before it changes anything (nothing is created when
    one fails, as on Stripe). Answers the confirmation token named, if any."""
    token = _token(call, params)
    if token is not None:
        confirmation_tokens.check_usable(call, token)
    if intent["object"] == "payment_intent":
        bank_methods.refuse_payment(call, params)
    return_url = _return_url(intent, params, token)
    apm = intent["automatic_payment_methods"]
    if (
        not off_session
        and not call.publishable  # Stripe.js may leave it out with redirect: "if_required"
        and versions.applies(call.api_version, "return_url_required_with_redirects")
        and return_url is None
        and apm
        and apm["enabled"]
        and (apm["allow_redirects"] != "never")
    ):
        raise invalid_request(
            RETURN_URL_MESSAGE.format(label=LABEL[intent["object"]]), param="return_url"
        )
    explicit = as_str(params, "payment_method")
    if explicit and not explicit.startswith(("pm_card_", "pm_sepaDebit_")):
        _check_ownership(
            intent, call.store.require("payment_method", explicit, param="payment_method")
        )
    elif not explicit and token is not None and "_existing" in token["_method"]:
        _check_ownership(
            intent, call.store.require("payment_method", token["_method"]["_existing"])
        )
    has_data = bool(as_dict(params, "payment_method_data"))
    if not (explicit or has_data or token is not None or intent.get("payment_method")):
        raise invalid_request(
            f"You cannot confirm this {LABEL[intent['object']]} because it's missing a payment "
            f"method. To confirm the {LABEL[intent['object']]}, pass a payment_method, "
            "payment_method_data or confirmation_token.",
            code=f"{intent['object']}_unexpected_state",
        )
    return token


def choose_payment_method(
    call: Call, intent: StripeObject, params: Params, *, off_session: bool
) -> StripeObject:
    """Explicit `payment_method` wins over the token's, which wins over the intent's own."""
    token = check_confirmable(call, intent, params, off_session=off_session)
    intent["_return_url"] = _return_url(intent, params, token)
    if (
        token is not None
        and token.get("setup_future_usage")
        and intent["object"] == "payment_intent"
    ):
        intent["setup_future_usage"] = intent["setup_future_usage"] or token["setup_future_usage"]
    explicit = as_str(params, "payment_method")
    if explicit:
        method = resolve(call, explicit)
    elif as_dict(params, "payment_method_data"):
        allowed = {"card", "sepa_debit"} if call.publishable else {"sepa_debit"}
        method = call.store.add(confirmation_tokens.method_from(call, params, frozenset(allowed)))
    elif token is not None:
        method = confirmation_tokens.consume(call, token["id"], intent=intent)
        token = None
    else:
        method = call.store.require("payment_method", intent["payment_method"])
    if token is not None:  # an explicit method won, but the token is still spent
        confirmation_tokens.consume(call, token["id"], intent=intent)
    _check_ownership(intent, method)
    use_sdk = as_bool(params, "use_stripe_sdk")
    if use_sdk is not None:
        intent["_use_stripe_sdk"] = use_sdk
    elif as_str(params, "confirmation_token") or call.publishable:
        intent["_use_stripe_sdk"] = True
    return method


def _check_ownership(intent: StripeObject, method: StripeObject) -> None:
    owner = method["customer"]
    if owner is None:
        if method.get("_consumed") or method.get("_detached"):
            raise invalid_request(REUSED_MESSAGE, param="payment_method")
        return
    if intent["customer"] is None:
        raise invalid_request(
            "The provided PaymentMethod was previously attached to a Customer. To use it with "
            f"this {LABEL[intent['object']]}, you must also pass the ID of that Customer in the "
            "`customer` parameter.",
            param="payment_method",
        )
    if owner != intent["customer"]:
        raise invalid_request(
            f"The provided PaymentMethod belongs to a different Customer than the "
            f"{LABEL[intent['object']]}.",
            param="payment_method",
        )


def require_action(call: Call, intent: StripeObject, method: StripeObject) -> None:
    """Move to `requires_action` with a 3-D Secure next action (SDK or redirect flavour)."""
    attempt = call.store.add_customer_step("payatt", "three_d_secure_attempt", intent)
    base = call.base_url.rstrip("/")
    challenge_url = f"{base}/_sandbox/3ds/{attempt}"
    if intent.get("_use_stripe_sdk"):
        next_action: dict[str, Any] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "stripe_3ds2_fingerprint",
                "merchant": "acct_sandbox",
                "three_d_secure_2_source": attempt,
                "directory_server_name": method.get("card", {}).get("brand", "visa"),
                "server_transaction_id": str(uuid.uuid4()),
                "three_ds_method_url": "",
                "three_ds_optimizations": "kf",
                "directory_server_encryption": {
                    "algorithm": "RSA",
                    "certificate": "",
                    "directory_server_id": "A000000003",
                    "root_certificate_authorities": [],
                },
                "one_click_authn": None,
                "sandbox_challenge_url": challenge_url,
            },
        }
    else:
        next_action = {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": intent.get("_return_url"), "url": challenge_url},
        }
    intent["status"] = "requires_action"
    intent["next_action"] = next_action
    intent["payment_method"] = method["id"]
    intent["_three_ds_attempt"] = attempt
    call.store.touch()
    call.emit(f"{intent['object']}.requires_action", intent)


def intent_for_attempt(call: Call, attempt_id: str) -> StripeObject:
    attempt = call.store.objects.get(attempt_id)
    if attempt is None or attempt["object"] != "three_d_secure_attempt":
        raise no_such("three_d_secure_attempt", attempt_id)
    return call.store.objects[attempt["intent"]]
