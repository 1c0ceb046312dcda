"""`expand[]`: replace ids in a response by the objects they name (`data.` paths on lists)."""

from __future__ import annotations

from typing import Any

from processor.sandbox.errors import invalid_request
from processor.sandbox.store import Store, public

MAX_DEPTH = 4


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
    if head not in node:
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
