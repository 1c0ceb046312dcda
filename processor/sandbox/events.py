"""Events: one immutable snapshot per state change, and the Events API (list, retrieve)."""

from __future__ import annotations

import fnmatch
from typing import Any

from processor.sandbox import listing
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, no_such
from processor.sandbox.ids import new_id
from processor.sandbox.store import Store, StripeObject, public
from processor.sandbox.wire import as_bool, as_list, as_str, reject_unknown

RETENTION_SECONDS = 30 * 24 * 3600
LIST_PARAMS = frozenset(
    {
        "type",
        "types",
        "created",
        "delivery_success",
        "limit",
        "starting_after",
        "ending_before",
        "expand",
    }
)


def create_event(
    store: Store,
    event_type: str,
    obj: StripeObject,
    *,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: dict[str, Any] | None = None,
) -> StripeObject:
    data: dict[str, Any] = {"object": public(obj)}
    if previous_attributes:
        data["previous_attributes"] = previous_attributes
    event: StripeObject = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": store.now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
    return store.add(event)


def retrieve(call: Call) -> StripeObject:
    reject_unknown(call.params, frozenset({"expand"}))
    event = call.store.require("event", call.path_args["id"])
    if event["created"] < call.now - RETENTION_SECONDS:
        raise no_such("event", event["id"])  # gone after 30 days, as on Stripe
    return public(event)


def _created_filter(value: Any) -> dict[str, int]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        if not value.isdigit():
            raise invalid_request("Invalid integer: " + value, param="created")
        return {"eq": int(value)}
    if not isinstance(value, dict):
        raise invalid_request("Invalid created filter", param="created")
    bounds: dict[str, int] = {}
    for key, raw in value.items():
        if key not in ("gt", "gte", "lt", "lte") or not str(raw).isdigit():
            raise invalid_request(f"Invalid created[{key}]", param=f"created[{key}]")
        bounds[key] = int(raw)
    return bounds


def _within(created: int, bounds: dict[str, int]) -> bool:
    checks = {
        "eq": created == bounds.get("eq", created),
        "gt": created > bounds.get("gt", created - 1),
        "gte": created >= bounds.get("gte", created),
        "lt": created < bounds.get("lt", created + 1),
        "lte": created <= bounds.get("lte", created),
    }
    return all(checks.values())


def list_route(call: Call) -> StripeObject:
    params = call.params
    reject_unknown(params, LIST_PARAMS)
    single = as_str(params, "type")
    many = [str(t) for t in as_list(params, "types")]
    if single and many:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.",
            param="types",
            code="parameters_exclusive",
        )
    if len(many) > 20:
        raise invalid_request("You may pass at most 20 types.", param="types")
    bounds = _created_filter(params.get("created"))
    delivered = as_bool(params, "delivery_success")
    oldest = call.now - RETENTION_SECONDS

    def wanted(event: StripeObject) -> bool:
        if event["created"] < oldest or not _within(event["created"], bounds):
            return False
        if single and not fnmatch.fnmatchcase(event["type"], single):
            return False
        if many and event["type"] not in many:
            return False
        return not (delivered is not None and (event["pending_webhooks"] == 0) != delivered)

    items = (e for e in call.store.newest_first("event") if wanted(e))
    return listing.page(call, items, "/v1/events", kind_label="event")
