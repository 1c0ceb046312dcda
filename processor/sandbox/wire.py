"""Stripe's wire format: bracketed form bodies and query strings in, plain dicts out.

`a[b][0]=x&a[b][1]=y&c=1` becomes `{"a": {"b": ["x", "y"]}, "c": "1"}`; values stay strings
and each resource coerces what it reads (`as_bool`, `as_int`), as Stripe's API does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from processor.sandbox.errors import invalid_request
from processor.sandbox.parameter_shapes import first_unknown

Params = dict[str, Any]


def _path_of(key: str) -> list[str]:
    """`a[b][]` -> ["a", "b", ""]; a key without brackets is a one-part path."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    parts = [head]
    for piece in ("[" + rest).split("]")[:-1]:
        parts.append(piece.lstrip("["))
    return parts


def _listify(node: Any) -> Any:
    """Dicts whose keys are all indexes (or appends) become lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(
        isinstance(k, str) and (k.isdigit() or k.startswith("\0")) for k in converted
    ):
        ordered = sorted(
            converted.items(),
            key=lambda item: int(item[0]) if item[0].isdigit() else 10**9 + int(item[0][1:]),
        )
        return [value for _, value in ordered]
    return converted


def decode_pairs(pairs: list[tuple[str, str]]) -> Params:
    root: dict[str, Any] = {}
    appended = 0
    for key, value in pairs:
        path = _path_of(key)
        node = root
        for position, part in enumerate(path):
            if part == "":
                part = f"\0{appended}"
                appended += 1
            last = position == len(path) - 1
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def decode_form(body: bytes | str) -> Params:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return decode_pairs(parse_qsl(text, keep_blank_values=True))


def decode_query(query_string: bytes | str) -> Params:
    """Query strings may carry percent-encoded brackets (`created%5Bgte%5D=1`)."""
    return decode_form(query_string)


def decode_json(body: bytes) -> Params:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise invalid_request("Invalid JSON body.") from exc
    if not isinstance(data, dict):
        raise invalid_request("The JSON body must be an object.")
    return {key: _stringify(value) for key, value in data.items()}


def _stringify(value: Any) -> Any:
    """JSON scalars are read the same way as form values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return value


def as_bool(params: Params, name: str, default: bool | None = None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid_request(f"Invalid boolean: {value}", param=name, code="parameter_invalid_boolean")


def _given(params: Params, name: str, required: bool) -> Any:
    """The parameter's value; None when absent or empty (Stripe's way of unsetting), which a
    required parameter may not be."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    return value


def as_int(params: Params, name: str, *, required: bool = False) -> int | None:
    value = _given(params, name, required)
    if value is None:
        return None
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise invalid_request(
            f"Invalid integer: {value}", param=name, code="parameter_invalid_integer"
        )
    return int(value)


def as_str(params: Params, name: str, *, required: bool = False) -> str | None:
    value = _given(params, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"Invalid string: {name}", param=name)
    return value


def as_choice(params: Params, name: str, choices: tuple[str, ...]) -> str | None:
    """A string that must be one of `choices` when given (400 naming them otherwise)."""
    value = as_str(params, name)
    if value is not None and value not in choices:
        allowed = ", ".join(choices[:-1]) + " or " + choices[-1]
        raise invalid_request(f"Invalid {name}: must be one of {allowed}", param=name)
    return value


def as_dict(params: Params, name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid_request(
            f"Invalid hash for {name}", param=name, code="parameter_invalid_empty"
        )
    return value


def as_list(params: Params, name: str) -> list[Any]:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def missing_param(name: str):  # type: ignore[no-untyped-def]
    return invalid_request(f"Missing required param: {name}.", param=name, code="parameter_missing")


def reject_unknown(params: Params, allowed: frozenset[str]) -> None:
    """Stripe answers 400 `parameter_unknown` for any parameter an endpoint does not take,
    at any depth, naming its full bracket path."""
    for name, value in params.items():
        unknown = name if name not in allowed else first_unknown(name, value)
        if unknown is not None:
            raise invalid_request(
                f"Received unknown parameter: {unknown}", param=unknown, code="parameter_unknown"
            )


METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def _check_metadata(merged: dict[str, str]) -> None:
    if len(merged) > METADATA_MAX_KEYS:
        raise invalid_request(
            f"Metadata can hold at most {METADATA_MAX_KEYS} keys; this request would leave "
            f"{len(merged)}.",
            param="metadata",
        )
    for key, value in merged.items():
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_request(
                f"Metadata keys can be at most {METADATA_MAX_KEY_LENGTH} characters long; "
                f"'{key}' has {len(key)}.",
                param=f"metadata[{key}]",
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_request(
                f"Metadata values can be at most {METADATA_MAX_VALUE_LENGTH} characters long; "
                f"the value of '{key}' has {len(value)}.",
                param=f"metadata[{key}]",
            )


def merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """`metadata=""` clears; `metadata[k]=""` removes one key; others set."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise invalid_request("Invalid hash for metadata", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        elif isinstance(value, dict | list):
            raise invalid_request(
                f"Invalid value for metadata[{key}]: metadata values are strings.",
                param=f"metadata[{key}]",
            )
        else:
            merged[key] = str(value)
    _check_metadata(merged)
    return merged
