"""List objects and cursor pagination; the Events API filters."""

from __future__ import annotations

import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.flows import charge_off_session


def test_pages_are_newest_first_with_has_more(sandbox: SandboxHandle) -> None:
    made = [sandbox.client.v1.customers.create({"email": f"p{i}@example.com"}) for i in range(5)]
    newest_first = [c.id for c in reversed(made)]

    first = sandbox.client.v1.customers.list({"limit": 2})
    second = sandbox.client.v1.customers.list({"limit": 2, "starting_after": first.data[-1].id})
    back = sandbox.client.v1.customers.list({"limit": 2, "ending_before": second.data[0].id})

    assert first.object == "list" and first.url == "/v1/customers"
    assert [c.id for c in first.data] == newest_first[:2] and first.has_more
    assert [c.id for c in second.data] == newest_first[2:4] and second.has_more
    assert [c.id for c in back.data] == newest_first[:2] and not back.has_more


def test_auto_paging_walks_everything(sandbox: SandboxHandle) -> None:
    made = {sandbox.client.v1.customers.create({}).id for _ in range(7)}

    seen = [c.id for c in sandbox.client.v1.customers.list({"limit": 3}).auto_paging_iter()]

    assert set(seen) == made and len(seen) == 7


def test_limit_bounds(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.customers.list({"limit": 101})
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.customers.list({"limit": 0})


def test_events_filters(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("events@example.com")
    intent = charge_off_session(sandbox, customer, method)
    events = sandbox.client.v1.events

    wildcard = events.list({"type": "payment_intent.*"})
    several = events.list({"types": ["customer.created", "payment_intent.succeeded"]})
    created = intent.created
    none_after = events.list({"created": {"gt": created + 1000}})
    all_since = events.list({"created": {"gte": created - 1000}, "limit": 100})

    assert {e.type for e in wildcard.data} == {"payment_intent.created", "payment_intent.succeeded"}
    assert {e.type for e in several.data} == {"customer.created", "payment_intent.succeeded"}
    assert none_after.data == []
    assert len(all_since.data) == len(sandbox.control.events)
    retrieved = events.retrieve(wildcard.data[0].id)
    assert retrieved.api_version == "2026-10-28.endive"
    assert retrieved.data.object.object == "payment_intent"
    assert retrieved.request.id.startswith("req_")
    assert retrieved.request.idempotency_key


def test_events_auto_paging_in_order(sandbox: SandboxHandle) -> None:
    for _ in range(6):
        sandbox.client.v1.customers.create({})

    listed = [e.id for e in sandbox.client.v1.events.list({"limit": 4}).auto_paging_iter()]

    assert listed == [e["id"] for e in reversed(sandbox.control.events)]


def test_customer_payment_methods_are_paginated(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    ids = [
        sandbox.client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id}).id
        for _ in range(3)
    ]

    page = sandbox.client.v1.customers.payment_methods.list(customer.id, {"limit": 2})
    rest = sandbox.client.v1.customers.payment_methods.list(
        customer.id, {"limit": 2, "starting_after": page.data[-1].id}
    )

    assert page.has_more and not rest.has_more
    assert [m.id for m in [*page.data, *rest.data]] == list(reversed(ids))
    assert page.url == f"/v1/customers/{customer.id}/payment_methods"
