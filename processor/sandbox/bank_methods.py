"""iDEAL and Bancontact PaymentMethods and the start of their set-up: the bank redirect.

They are single use: a set-up leaves a generated `sepa_debit` method behind (bank_redirects.py
finishes it). This module must not import setup_intents (which imports it).
"""

from __future__ import annotations

from typing import Any

from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request
from processor.sandbox.ids import new_id
from processor.sandbox.payment_methods import billing_details
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import Params, as_dict, as_str

BANK_TYPES = frozenset({"ideal", "bancontact"})
# iDEAL banks and their BICs, as Stripe lists them (a subset; any other bank is refused).
IDEAL_BANKS = {
    "abn_amro": "ABNANL2A",
    "asn_bank": "ASNBNL21",
    "bunq": "BUNQNL2A",
    "ing": "INGBNL2A",
    "knab": "KNABNL2H",
    "rabobank": "RABONL2U",
    "regiobank": "RBRBNL21",
    "revolut": "REVOLT21",
    "sns_bank": "SNSBNL2A",
    "triodos_bank": "TRIONL2U",
    "van_lanschot": "FVLBNL22",
}
MANDATE_MESSAGE = (
    "A mandate is required to set up a {kind} PaymentMethod for future SEPA Direct Debit "
    "payments. Pass `mandate_data[customer_acceptance]` when confirming."
)


def build_bank_method(
    call: Call, kind: str, data: Params, *, allow_redisplay: str = "unspecified"
) -> StripeObject:
    """An iDEAL or Bancontact PaymentMethod, not yet stored (tokens keep it until used)."""
    details: dict[str, Any] = {}
    if kind == "ideal":
        bank = as_str(as_dict(data, "ideal"), "bank")
        if bank is not None and bank not in IDEAL_BANKS:
            raise invalid_request(
                f"Invalid payment_method_data[ideal][bank]: {bank} is not a supported bank.",
                param="payment_method_data[ideal][bank]",
            )
        details = {"bank": bank, "bic": IDEAL_BANKS.get(bank or "")}
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": allow_redisplay,
        "billing_details": billing_details(data.get("billing_details")),
        "created": call.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": kind,
        kind: details,
        "_set_up": False,
        "_consumed": False,
    }


def method_type_in(call: Call, params: Params) -> str | None:
    """The type of method a confirmation will use, read before anything changes."""
    data = as_dict(params, "payment_method_data")
    if data:
        return as_str(data, "type")
    token = call.store.get("confirmation_token", as_str(params, "confirmation_token"))
    if token is not None and not as_str(params, "payment_method"):
        return str(token["_method"]["type"])
    return None


def _has_acceptance(mandate: Any) -> bool:
    return isinstance(mandate, dict) and isinstance(mandate.get("customer_acceptance"), dict)


def check_setup(call: Call, params: Params) -> None:
    """A bank set-up generates a SEPA mandate: it needs the customer's acceptance (on the
    confirm call or collected on the token), and a name and email for the mandate."""
    kind = method_type_in(call, params)
    if kind not in BANK_TYPES:
        return
    token = call.store.get("confirmation_token", as_str(params, "confirmation_token"))
    if not (
        _has_acceptance(params.get("mandate_data"))
        or (token is not None and _has_acceptance(token.get("mandate_data")))
    ):
        raise invalid_request(MANDATE_MESSAGE.format(kind=kind), param="mandate_data")
    data = as_dict(params, "payment_method_data")
    billing = (
        billing_details(data.get("billing_details"))
        if data
        else (token or {}).get("_method", {}).get("billing_details", {})
    )
    for name in ("name", "email"):
        if not billing.get(name):
            raise invalid_request(
                f"Missing required param: payment_method_data[billing_details][{name}]. "
                f"{kind} set-ups need it for the SEPA Direct Debit mandate.",
                param=f"payment_method_data[billing_details][{name}]",
                code="parameter_missing",
            )


def refuse_payment(call: Call, params: Params) -> None:
    """Paying with iDEAL or Bancontact (a PaymentIntent) is not emulated: refused up front,
    before anything changes, rather than half-done."""
    kind = method_type_in(call, params)
    if kind in BANK_TYPES:
        raise invalid_request(
            f"The sandbox emulates {kind} in setup mode only (SetupIntents); it cannot pay a "
            "PaymentIntent with it.",
            param="payment_method_data[type]",
        )


def attempt_details(method: StripeObject) -> dict[str, Any]:
    """The set-up attempt's view of the bank method; the generated fields fill in on success."""
    kind = method["type"]
    common = {
        "bic": method[kind].get("bic"),
        "generated_sepa_debit": None,
        "generated_sepa_debit_mandate": None,
        "iban_last4": None,
        "verified_name": None,
    }
    if kind == "ideal":
        return {"type": kind, kind: {"bank": method[kind]["bank"], **common}}
    return {
        "type": kind,
        kind: {"bank_code": None, "bank_name": None, "preferred_language": None, **common},
    }


def start_redirect(call: Call, intent: StripeObject, method: StripeObject) -> None:
    """`requires_action` with `redirect_to_url` to the sandbox bank page, whatever
    `use_stripe_sdk` says: bank methods always leave the merchant's page."""
    return_url = intent.get("_return_url")
    if not return_url:
        raise invalid_request(
            f"A `return_url` must be specified to confirm with a {method['type']} "
            "PaymentMethod: the customer is sent to their bank and back.",
            param="return_url",
        )
    redirect = call.store.add_customer_step("bankredir", "bank_redirect", intent)
    attempt = call.store.get("setup_attempt", intent.get("latest_attempt"))
    if attempt is not None:
        attempt["payment_method_details"] = attempt_details(method)
    intent.update(
        status="requires_action",
        payment_method=method["id"],
        next_action={
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": return_url,
                "url": f"{call.base_url.rstrip('/')}/_sandbox/bank/{redirect}",
            },
        },
    )
    intent["_bank_redirect"] = redirect
    call.store.touch()
    call.emit("setup_intent.requires_action", intent)
