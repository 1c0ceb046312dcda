"""Event handlers, one module per Stripe object family; `dispatch.HANDLERS` lists them all.

Every handler has the same shape, `(session, event, now) -> None`, runs inside the transaction
that records the event, never calls Stripe, and is safe to apply twice and in any order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ref_id(value: Any) -> str | None:
    """The id of a field Stripe sends either as an id or, when expanded, as an object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) else None
    return None


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def required_id(snapshot: Mapping[str, Any]) -> str:
    """The object's own id; an event about an object without one cannot be applied."""
    value = snapshot.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError("data.object has no id")
    return value
