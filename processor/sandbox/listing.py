"""List objects with Stripe's cursor pagination: `limit`, `starting_after`, `ending_before`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, no_such
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import as_int, as_str


def page(
    call: Call,
    newest_first: list[StripeObject],
    url: str,
    *,
    kind_label: str,
    render: Callable[[StripeObject], Any] = public,
) -> StripeObject:
    """One page of `newest_first`, as Stripe orders lists (most recent first)."""
    limit = as_int(call.params, "limit")
    if limit is None:
        limit = 10
    if not 1 <= limit <= 100:
        raise invalid_request("Invalid limit: must be at least 1 and at most 100.", param="limit")
    after = as_str(call.params, "starting_after")
    before = as_str(call.params, "ending_before")
    if after and before:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
            code="parameters_exclusive",
        )
    items = newest_first
    if after or before:
        cursor = after or before
        position = next((i for i, item in enumerate(items) if item["id"] == cursor), None)
        if position is None:
            raise no_such(
                kind_label, str(cursor), param="starting_after" if after else "ending_before"
            )
        if after:
            candidates = items[position + 1 :]
            chosen = candidates[:limit]
        else:
            candidates = items[:position]
            chosen = candidates[-limit:]
    else:
        candidates = items
        chosen = candidates[:limit]
    return {
        "object": "list",
        "data": [render(item) for item in chosen],
        "has_more": len(candidates) > limit,
        "url": url,
    }
