"""Reading fields of stripe-python objects, which are not dicts and may leave fields out."""

from __future__ import annotations

from typing import Any


def value_of(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or None where any step is missing."""
    for name in path:
        if obj is None:
            return None
        try:
            obj = obj[name]
        except (KeyError, TypeError):
            return None
    return obj


def id_of(value: Any) -> str | None:
    """An object's id whether Stripe sent it bare (`"ch_..."`) or expanded."""
    if value is None or isinstance(value, str):
        return value
    return value_of(value, "id")
