"""Reading fields of Stripe objects, whether webhook JSON (dicts) or stripe-python objects.

A leaf: imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stripe import StripeObject

# stripe-python's objects are not Mappings and have no `.get`, but both kinds index by name.
_FIELD_HOLDERS = (Mapping, StripeObject)


def value_of(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None where a step is missing: Stripe leaves fields out."""
    for name in path:
        if not isinstance(obj, _FIELD_HOLDERS):
            return None
        try:
            obj = obj[name]
        except KeyError:
            return None
    return obj


def ref_id(value: Any) -> str | None:
    """The id of a field Stripe sends either as an id or, when expanded, as an object."""
    if isinstance(value, str):
        return value
    inner = value_of(value, "id")
    return inner if isinstance(inner, str) else None


def required_id(obj: Mapping[str, Any] | StripeObject) -> str:
    """The object's own id; an event about an object without one cannot be applied."""
    value = value_of(obj, "id")
    if not isinstance(value, str) or not value:
        raise ValueError("data.object has no id")
    return value


def text_or_none(value: Any) -> str | None:
    """A text field, or None: webhook JSON is untrusted and may carry any type there."""
    return value if isinstance(value, str) else None
