"""The envelope check: only Stripe events with an id, a type, a time and an object get through."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.errors import PayloadInvalid
from processor.webhooks.envelope import parse_event, without_client_secrets
from tests.fixtures.events import CREATED, body_of, payment_intent, stripe_event


def test_a_stripe_event_is_parsed_into_what_storage_needs() -> None:
    intent = payment_intent("pi_123", client_secret=None)
    payload = body_of(stripe_event("payment_intent.succeeded", intent, event_id="evt_1"))
    event = parse_event(payload)
    assert event.id == "evt_1"
    assert event.type == "payment_intent.succeeded"
    assert event.created == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert event.object_id == "pi_123"
    assert event.object["amount"] == 2000
    assert event.api_version == "2026-10-28.endive"
    assert event.livemode is False
    assert event.payload == payload


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    event = stripe_event("payment_intent.succeeded", payment_intent())
    target = event
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return event


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({**stripe_event("x.y", {}), "object": "payment_intent"}, "object must be 'event'"),
        (_without(("object",)), "object must be 'event'"),
        ({**stripe_event("x.y", {}), "id": "pi_123"}, "evt_"),
        (_without(("id",)), "evt_"),
        ({**stripe_event("x.y", {}), "id": 7}, "evt_"),
        (_without(("type",)), "type"),
        ({**stripe_event("x.y", {}), "type": ""}, "type"),
        (_without(("created",)), "created"),
        ({**stripe_event("x.y", {}), "created": "yesterday"}, "created"),
        ({**stripe_event("x.y", {}), "created": 10**15}, "created"),
        (_without(("data", "object")), "data.object"),
        ({**stripe_event("x.y", {}), "data": {"object": "pi_1"}}, "data.object"),
        ({**stripe_event("x.y", {}), "data": None}, "data.object"),
        ([stripe_event("x.y", {})], "object must be 'event'"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(PayloadInvalid, match=reason):
        parse_event(json.dumps(document))


@pytest.mark.parametrize("payload", ["", "{", "not json", "{'id': 1}", "\ufeff{}"])
def test_non_json_is_refused(payload: str) -> None:
    with pytest.raises(PayloadInvalid):
        parse_event(payload)


def test_the_created_time_is_kept_to_the_second() -> None:
    event = parse_event(body_of(stripe_event("x.y", {"id": "obj"}, created=CREATED + 7)))
    assert event.created.timestamp() == CREATED + 7


def test_an_event_holding_a_nul_character_is_refused() -> None:
    """PostgreSQL text cannot hold NUL: the event could never be stored."""
    document = {"id": "evt_1", "object": "event", "type": "x", "created": 1,
                "data": {"object": {"id": "pi_\u0000"}}}
    with pytest.raises(PayloadInvalid, match="NUL"):
        parse_event(json.dumps(document))
    escaped_backslash = json.dumps({**document, "data": {"object": {"id": "pi_\\u0000"}}})
    assert parse_event(escaped_backslash).object_id == "pi_\\u0000"


def test_client_secrets_are_nulled_at_any_depth_and_nothing_else_changes() -> None:
    intent = payment_intent("pi_secret", client_secret="pi_secret_secret_abc")
    intent["metadata"] = {"note": 'says "client_secret":"pi_kept_secret_x" in its text'}
    intent["latest_charge"] = {"id": "ch_1", "nested": {"client_secret": "seti_1_secret_z"}}
    payload = body_of(stripe_event("payment_intent.succeeded", intent))

    event = parse_event(payload)

    stored = json.loads(event.payload)
    assert stored["data"]["object"]["client_secret"] is None
    assert stored["data"]["object"]["latest_charge"]["nested"]["client_secret"] is None
    assert stored["data"]["object"]["metadata"] == intent["metadata"]
    assert "_secret_abc" not in event.payload and "secret_z" not in event.payload
    original = json.loads(payload)
    original["data"]["object"]["client_secret"] = None
    original["data"]["object"]["latest_charge"]["nested"]["client_secret"] = None
    assert stored == original


_texts = st.text(alphabet=st.sampled_from('ab"\\:{}, \u00e9\n'), max_size=12)
_json = st.recursive(
    st.none() | st.integers() | _texts,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["client_secret", "id", "client_secret_x", "note"])
                      | _texts, inner, max_size=4),
    max_leaves=12,
)


def _nulled(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: None if key == "client_secret" and isinstance(item, str) else _nulled(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_nulled(item) for item in value]
    return value


@given(document=_json, indent=st.sampled_from([None, 1]))
def test_nulling_client_secrets_is_the_same_as_nulling_them_in_the_parsed_document(
    document: Any, indent: int | None
) -> None:
    payload = json.dumps(document, indent=indent, ensure_ascii=False)
    assert json.loads(without_client_secrets(payload)) == _nulled(document)
