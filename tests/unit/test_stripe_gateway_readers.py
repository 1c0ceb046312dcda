"""Stripe field readers: the same answers for webhook JSON (dicts) and stripe-python objects."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from processor.stripe_gateway import ref_id, required_id, text_or_none, value_of

INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "customer": {"id": "cus_1", "object": "customer"},
    "latest_charge": "ch_1",
    "payment_method": None,
    "metadata": {"reference": "order-7"},
    "last_payment_error": {
        "code": "card_declined",
        "payment_method": {"id": "pm_1", "object": "payment_method", "created": 5},
    },
    "charges": [{"id": "ch_0"}],
}


def stripe_object(values: dict[str, Any]) -> stripe.StripeObject:
    """What stripe-python hands back: nested objects become typed StripeObjects too."""
    return stripe.StripeObject.construct_from(values, "sk_test_x")


@pytest.fixture(params=["dict", "stripe"])
def intent(request: pytest.FixtureRequest) -> Any:
    return INTENT if request.param == "dict" else stripe_object(INTENT)


def test_stripe_objects_are_neither_mappings_nor_have_get() -> None:
    obj = stripe_object(INTENT)
    assert not isinstance(obj, dict)
    assert isinstance(obj["customer"], stripe.Customer)
    with pytest.raises(AttributeError):
        obj.get("id")  # type: ignore[operator]


def test_value_of_follows_a_path(intent: Any) -> None:
    assert value_of(intent, "metadata", "reference") == "order-7"
    assert value_of(intent, "last_payment_error", "code") == "card_declined"
    assert value_of(intent, "last_payment_error", "payment_method", "created") == 5


def test_value_of_is_none_where_a_step_is_missing_or_null(intent: Any) -> None:
    assert value_of(intent, "missing") is None
    assert value_of(intent, "missing", "deeper") is None
    assert value_of(intent, "payment_method", "id") is None
    assert value_of(intent, "metadata", "other") is None


def test_value_of_does_not_index_into_strings_lists_or_other_values(intent: Any) -> None:
    assert value_of(intent, "latest_charge", "id") is None
    assert value_of(intent, "charges", "id") is None
    for other in (None, 7, 1.5, b"id", ["id"], ("id",), {"id"}, object()):
        assert value_of(other, "id") is None


def test_value_of_with_no_path_is_the_object_itself(intent: Any) -> None:
    assert value_of(intent) is intent
    assert value_of(None) is None


def test_ref_id_reads_bare_and_expanded_references(intent: Any) -> None:
    assert ref_id(value_of(intent, "latest_charge")) == "ch_1"
    assert ref_id(value_of(intent, "customer")) == "cus_1"
    assert ref_id(value_of(intent, "last_payment_error", "payment_method")) == "pm_1"
    assert ref_id(value_of(intent, "payment_method")) is None
    assert ref_id(intent) == "pi_1"


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        ["ch_1"],
        object(),
        {},
        {"object": "charge"},
        {"id": None},
        {"id": 12},
        {"id": {"id": "ch_1"}},
    ],
)
def test_ref_id_is_none_for_anything_without_a_text_id(value: Any) -> None:
    assert ref_id(value) is None
    if isinstance(value, dict):
        assert ref_id(stripe_object(value)) is None


def test_ref_id_keeps_a_bare_string_as_is() -> None:
    assert ref_id("ch_1") == "ch_1"
    assert ref_id("") == ""


def test_required_id_reads_both_kinds(intent: Any) -> None:
    assert required_id(intent) == "pi_1"


@pytest.mark.parametrize("values", [{}, {"id": None}, {"id": ""}, {"id": 3}])
def test_required_id_refuses_an_object_without_one(values: dict[str, Any]) -> None:
    for obj in (values, stripe_object(values)):
        with pytest.raises(ValueError, match="has no id"):
            required_id(obj)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("card_declined", "card_declined"), ("", ""), (None, None), (3, None), ({"a": 1}, None)],
)
def test_text_or_none_keeps_only_text(value: Any, expected: str | None) -> None:
    assert text_or_none(value) == expected
