"""Customers: create, retrieve, update, list, delete."""

from __future__ import annotations

from typing import Any

from processor.sandbox import listing
from processor.sandbox.context import Call
from processor.sandbox.ids import new_id
from processor.sandbox.payment_methods import ADDRESS_FIELDS
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import as_str, merge_metadata, reject_unknown

WRITABLE = ("description", "email", "name", "phone")
CREATE_PARAMS = frozenset(
    {
        *WRITABLE,
        "metadata",
        "address",
        "shipping",
        "invoice_settings",
        "preferred_locales",
        "payment_method",
        "expand",
    }
)
UPDATE_PARAMS = CREATE_PARAMS - {"payment_method"}
LIST_PARAMS = frozenset({"email", "limit", "starting_after", "ending_before", "created", "expand"})


def _address(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    return {name: data.get(name) or None for name in ADDRESS_FIELDS}


def _apply(customer: StripeObject, params: dict[str, Any]) -> dict[str, Any]:
    """Write the given fields; answer the previous values of those that changed."""
    previous: dict[str, Any] = {}

    def set_field(name: str, value: Any) -> None:
        if customer.get(name) != value:
            previous[name] = customer.get(name)
            customer[name] = value

    for name in WRITABLE:
        if name in params:
            set_field(name, params[name] or None)
    if "address" in params:
        set_field("address", _address(params["address"]))
    if "preferred_locales" in params:
        locales = params["preferred_locales"]
        set_field("preferred_locales", list(locales) if isinstance(locales, list) else [])
    if "invoice_settings" in params and isinstance(params["invoice_settings"], dict):
        settings = dict(customer["invoice_settings"])
        if "default_payment_method" in params["invoice_settings"]:
            settings["default_payment_method"] = (
                params["invoice_settings"]["default_payment_method"] or None
            )
        set_field("invoice_settings", settings)
    if "metadata" in params:
        set_field("metadata", merge_metadata(customer["metadata"], params["metadata"]))
    return previous


def create(call: Call) -> StripeObject:
    reject_unknown(call.params, CREATE_PARAMS)
    customer: StripeObject = {
        "id": new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": call.now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": new_id("X", 6)[2:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    _apply(customer, call.params)
    call.store.add(customer)
    call.emit("customer.created", customer)
    return public(customer)


def retrieve(call: Call) -> StripeObject:
    reject_unknown(call.params, frozenset({"expand"}))
    customer = call.store.objects.get(call.path_args["id"])
    if customer is not None and customer["object"] == "customer" and customer.get("_hidden"):
        return {"id": customer["id"], "object": "customer", "deleted": True}
    return public(call.store.require("customer", call.path_args["id"]))


def update(call: Call) -> StripeObject:
    reject_unknown(call.params, UPDATE_PARAMS)
    customer = call.store.require("customer", call.path_args["id"])
    previous = _apply(customer, call.params)
    if previous:
        call.store.touch()
        call.emit("customer.updated", customer, previous)
    return public(customer)


def delete(call: Call) -> StripeObject:
    customer = call.store.require("customer", call.path_args["id"])
    customer["_hidden"] = True
    call.store.touch()
    call.emit("customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


def list_route(call: Call) -> StripeObject:
    reject_unknown(call.params, LIST_PARAMS)
    email = as_str(call.params, "email")
    items = (
        c
        for c in call.store.newest_first("customer")
        if not c.get("_hidden") and (email is None or c["email"] == email)
    )
    return listing.page(call, items, "/v1/customers", kind_label="customer")
