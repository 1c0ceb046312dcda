"""`expand[]`: replace ids in a response by the objects they name (`data.` paths on lists).

Only the fields Stripe declares expandable may be expanded, up to four levels deep.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox.errors import invalid_request
from processor.sandbox.store import Store, public

MAX_DEPTH = 4
# Per object type, the fields Stripe's API lets `expand[]` name.
EXPANDABLE: dict[str, frozenset[str]] = {
    "balance_transaction": frozenset({"source"}),
    "charge": frozenset(
        {
            "application",
            "application_fee",
            "balance_transaction",
            "customer",
            "failure_balance_transaction",
            "on_behalf_of",
            "payment_intent",
            "review",
            "source_transfer",
            "transfer",
        }
    ),
    "customer": frozenset({"default_source", "test_clock"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "payment_intent": frozenset(
        {"application", "customer", "latest_charge", "on_behalf_of", "payment_method", "review"}
    ),
    "payment_method": frozenset({"customer"}),
    "refund": frozenset(
        {
            "balance_transaction",
            "charge",
            "failure_balance_transaction",
            "payment_intent",
            "source_transfer_reversal",
            "transfer_reversal",
        }
    ),
    "setup_attempt": frozenset(
        {
            "application",
            "customer",
            "mandate",
            "on_behalf_of",
            "payment_method",
            "setup_intent",
            "single_use_mandate",
        }
    ),
    "setup_intent": frozenset(
        {
            "application",
            "customer",
            "latest_attempt",
            "mandate",
            "on_behalf_of",
            "payment_method",
            "single_use_mandate",
        }
    ),
}


def apply(store: Store, body: Any, paths: list[Any]) -> Any:
    for path in paths:
        if not isinstance(path, str) or not path:
            raise invalid_request("Invalid expand parameter.", param="expand")
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        _expand(store, body, parts, path)
    return body


def _expand(store: Store, node: Any, parts: list[str], path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand(store, item, parts, path)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    kind = node.get("object")
    expandable = head == "data" if kind == "list" else head in EXPANDABLE.get(str(kind), ())
    if head not in node or not expandable:
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    value = node[head]
    if isinstance(value, str):
        target = store.objects.get(value)
        if target is None:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = public(target)
        node[head] = value
    if rest and value is not None:
        _expand(store, value, rest, path)
