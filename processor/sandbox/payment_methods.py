"""PaymentMethods: materialising test cards and IBANs, attach, detach, list, retrieve.

Magic ids (`pm_card_visa`, `pm_sepaDebit_success_de`) produce a new `pm_…` each time they
are used, as Stripe does. Behaviour rides along in the private `_card` / `_iban` keys.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox import cards, listing
from processor.sandbox.cards import TestCard, TestIban
from processor.sandbox.context import Call
from processor.sandbox.errors import SandboxError, invalid_request, no_such
from processor.sandbox.ids import new_id
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import as_str, merge_metadata, reject_unknown

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
REUSED_MESSAGE = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was detached "
    "from a Customer. It may not be used again. To use a PaymentMethod multiple times, you "
    "must attach it to a Customer first."
)


def billing_details(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    address = data.get("address") if isinstance(data.get("address"), dict) else {}
    return {
        "address": {name: address.get(name) or None for name in ADDRESS_FIELDS},
        "email": data.get("email") or None,
        "name": data.get("name") or None,
        "phone": data.get("phone") or None,
        "tax_id": data.get("tax_id") or None,
    }


def card_hash(card: TestCard, exp_month: int, exp_year: int, cvc_checked: bool) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass" if cvc_checked else None,
        },
        "country": card.country,
        "display_brand": card.brand,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def sepa_hash(iban: TestIban) -> dict[str, Any]:
    return {
        "bank_code": iban.iban[4:12] if iban.country == "DE" else iban.iban[4:8],
        "branch_code": "",
        "country": iban.country,
        "fingerprint": iban.fingerprint,
        "generated_from": {"charge": None, "setup_attempt": None},
        "last4": iban.iban[-4:],
    }


def build_card(
    call: Call,
    card: TestCard,
    *,
    exp_month: int = 12,
    exp_year: int | None = None,
    cvc_checked: bool = False,
    details: Any = None,
    allow_redisplay: str = "unspecified",
    metadata: Any = None,
) -> StripeObject:
    """A card PaymentMethod not yet stored (confirmation tokens keep it until they are used)."""
    year = exp_year or call.store.now_datetime().year + 3
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": allow_redisplay,
        "billing_details": billing_details(details),
        "card": card_hash(card, exp_month, year, cvc_checked),
        "created": call.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": merge_metadata({}, metadata),
        "type": "card",
        "_card": card,
        "_set_up": False,
        "_consumed": False,
    }


def build_sepa(
    call: Call, iban: TestIban, *, details: Any = None, allow_redisplay: str = "unspecified"
) -> StripeObject:
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": allow_redisplay,
        "billing_details": billing_details(details),
        "created": call.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "sepa_debit": sepa_hash(iban),
        "type": "sepa_debit",
        "_iban": iban,
        "_set_up": False,
        "_consumed": False,
    }


def from_magic_id(call: Call, payment_method_id: str) -> StripeObject | None:
    card = cards.card_for_magic_id(payment_method_id)
    if card is not None:
        return build_card(call, card, cvc_checked=True)
    if payment_method_id in cards.SEPA_MAGIC_IDS:
        iban = cards.iban_for(cards.SEPA_MAGIC_IDS[payment_method_id])
        return build_sepa(call, iban, details={"name": "Jenny Rosen", "email": "jenny@example.com"})
    return None


def resolve(call: Call, payment_method_id: str, *, param: str = "payment_method") -> StripeObject:
    """An existing, usable PaymentMethod, or a fresh one for a magic test id."""
    fresh = from_magic_id(call, payment_method_id)
    if fresh is not None:
        return call.store.add(fresh)
    method = call.store.require("payment_method", payment_method_id, param=param)
    if method.get("_detached"):
        raise invalid_request(REUSED_MESSAGE, param=param)
    return method


def attach(call: Call, method: StripeObject, customer_id: str) -> None:
    """Attach (idempotently) and emit `payment_method.attached` the first time."""
    if method["customer"] == customer_id:
        return
    if method["customer"] is not None:
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    method["customer"] = customer_id
    call.store.touch()
    call.emit("payment_method.attached", method)


def refuse_if_declined(method: StripeObject) -> None:
    """Cards that issuers decline cannot be attached (402 `card_error`)."""
    card: TestCard | None = method.get("_card")
    if card is not None and card.refused is not None:
        raise decline_error(card.refused, payment_method=public(method))


def decline_error(decline: cards.Decline, **embedded: Any) -> SandboxError:
    return SandboxError(
        402,
        "card_error",
        decline.message,
        code=decline.code,
        decline_code=decline.decline_code,
        param=decline.param,
        **decline.advice(),
        **embedded,
    )


# --- routes -------------------------------------------------------------------------------

RETRIEVE_PARAMS = frozenset({"expand"})
ATTACH_PARAMS = frozenset({"customer", "expand"})
LIST_PARAMS = frozenset(
    {
        "customer",
        "customer_account",
        "type",
        "allow_redisplay",
        "limit",
        "starting_after",
        "ending_before",
        "expand",
    }
)
UPDATE_PARAMS = frozenset({"allow_redisplay", "billing_details", "metadata", "expand", "card"})


def retrieve(call: Call) -> StripeObject:
    reject_unknown(call.params, RETRIEVE_PARAMS)
    method = call.store.require("payment_method", call.path_args["id"])
    return public(method)


def update(call: Call) -> StripeObject:
    reject_unknown(call.params, UPDATE_PARAMS)
    method = call.store.require("payment_method", call.path_args["id"])
    if "billing_details" in call.params:
        merged = {**method["billing_details"], **call.params["billing_details"]}
        method["billing_details"] = billing_details(merged)
    if "allow_redisplay" in call.params:
        method["allow_redisplay"] = as_str(call.params, "allow_redisplay")
    method["metadata"] = merge_metadata(method["metadata"], call.params.get("metadata"))
    call.store.touch()
    call.emit("payment_method.updated", method)
    return public(method)


def attach_route(call: Call) -> StripeObject:
    reject_unknown(call.params, ATTACH_PARAMS)
    customer_id = as_str(call.params, "customer", required=True)
    customer = call.store.require("customer", customer_id, param="customer")
    method = resolve(call, call.path_args["id"], param="id")
    refuse_if_declined(method)
    attach(call, method, customer["id"])
    return public(method)


def detach_route(call: Call) -> StripeObject:
    reject_unknown(call.params, RETRIEVE_PARAMS)
    method = call.store.require("payment_method", call.path_args["id"])
    if method["customer"] is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    previous = {"customer": method["customer"]}
    method["customer"] = None
    method["_detached"] = True
    call.store.touch()
    call.emit("payment_method.detached", method, previous)
    return public(method)


def list_route(call: Call) -> StripeObject:
    reject_unknown(call.params, LIST_PARAMS)
    customer_id = as_str(call.params, "customer")
    if customer_id is not None:
        call.store.require("customer", customer_id, param="customer")
    return _list(call, customer_id, "/v1/payment_methods")


def list_for_customer(call: Call) -> StripeObject:
    reject_unknown(call.params, LIST_PARAMS - {"customer", "customer_account"})
    customer_id = call.path_args["customer"]
    call.store.require("customer", customer_id)
    return _list(call, customer_id, f"/v1/customers/{customer_id}/payment_methods")


def retrieve_for_customer(call: Call) -> StripeObject:
    reject_unknown(call.params, RETRIEVE_PARAMS)
    customer_id = call.path_args["customer"]
    call.store.require("customer", customer_id)
    method = call.store.get("payment_method", call.path_args["id"])
    if method is None or method["customer"] != customer_id:
        raise no_such("PaymentMethod", call.path_args["id"])
    return public(method)


def _list(call: Call, customer_id: str | None, url: str) -> StripeObject:
    kind = as_str(call.params, "type")
    redisplay = as_str(call.params, "allow_redisplay")

    def wanted(method: StripeObject) -> bool:
        if customer_id is not None and method["customer"] != customer_id:
            return False
        if kind and method["type"] != kind:
            return False
        return not (redisplay and method["allow_redisplay"] != redisplay)

    items = (m for m in call.store.newest_first("payment_method") if wanted(m))
    return listing.page(call, items, url, kind_label="PaymentMethod")
