"""List objects with Stripe's cursor pagination: `limit`, `starting_after`, `ending_before`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, no_such
from processor.sandbox.store import StripeObject, public
from processor.sandbox.wire import as_int, as_str


def page(
    call: Call,
    newest_first: Iterable[StripeObject],
    url: str,
    *,
    kind_label: str,
    render: Callable[[StripeObject], Any] = public,
) -> StripeObject:
    """One page of `newest_first` (most recent first, as Stripe orders lists).

    Reads the iterable only as far as the page needs, so a first page stays cheap however
    many objects the sandbox holds.
    """
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
    if before:
        items = list(newest_first)
        position = next((i for i, item in enumerate(items) if item["id"] == before), None)
        if position is None:
            raise no_such(kind_label, before, param="ending_before")
        newer = items[:position]
        chosen, has_more = newer[-limit:], len(newer) > limit
    else:
        remaining = iter(newest_first)
        if after:
            for item in remaining:
                if item["id"] == after:
                    break
            else:
                raise no_such(kind_label, after, param="starting_after")
        chosen = list(islice(remaining, limit + 1))
        chosen, has_more = chosen[:limit], len(chosen) > limit
    return {
        "object": "list",
        "data": [render(item) for item in chosen],
        "has_more": has_more,
        "url": url,
    }
