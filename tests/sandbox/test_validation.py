"""Validation as Stripe does it: unknown keys at any depth, metadata limits, `expand[]`, 404s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from tests.fixtures.sandbox import SandboxHandle


def _error(answer: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = answer.json()["error"]
    return error


def _post(sandbox: SandboxHandle, path: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}{path}",
        data=data,
        headers={"Authorization": f"Bearer {sandbox.secret_key}"},
    )


@pytest.mark.parametrize(
    ("path", "data", "param"),
    [
        (
            "/v1/setup_intents",
            {"automatic_payment_methods[enabled]": "true", "automatic_payment_methods[foo]": "x"},
            "automatic_payment_methods[foo]",
        ),
        (
            "/v1/customers",
            {"address[city]": "Lyon", "address[planet]": "Earth"},
            "address[planet]",
        ),
        (
            "/v1/setup_intents",
            {
                "confirm": "true",
                "payment_method": "pm_card_visa",
                "return_url": "https://shop.example/",
                "mandate_data[customer_acceptance][type]": "online",
                "mandate_data[customer_acceptance][online][ip_address]": "127.0.0.1",
                "mandate_data[customer_acceptance][online][colour]": "red",
            },
            "mandate_data[customer_acceptance][online][colour]",
        ),
    ],
)
def test_unknown_nested_parameters_name_their_full_path(
    sandbox: SandboxHandle, path: str, data: dict[str, str], param: str
) -> None:
    answer = _post(sandbox, path, data)

    assert answer.status_code == 400
    assert _error(answer)["code"] == "parameter_unknown"
    assert _error(answer)["param"] == param
    assert _error(answer)["message"] == f"Received unknown parameter: {param}"
    assert sandbox.client.v1.setup_intents.list().data == []


def test_known_nested_parameters_pass(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create(
        {"address": {"city": "Lyon", "country": "FR"}, "shipping": {"name": "Jo", "address": {}}}
    )
    assert customer.address is not None
    assert customer.address.city == "Lyon"


def test_metadata_limits(sandbox: SandboxHandle) -> None:
    fifty = {f"k{n}": "v" for n in range(50)}
    sandbox.client.v1.customers.create({"metadata": fifty})

    too_many = _post(sandbox, "/v1/customers", {f"metadata[k{n}]": "v" for n in range(51)})
    long_key = _post(sandbox, "/v1/customers", {f"metadata[{'k' * 41}]": "v"})
    long_value = _post(sandbox, "/v1/customers", {"metadata[note]": "x" * 501})
    at_limits = _post(sandbox, "/v1/customers", {f"metadata[{'k' * 40}]": "x" * 500})

    assert (too_many.status_code, _error(too_many)["param"]) == (400, "metadata")
    assert (long_key.status_code, _error(long_key)["param"]) == (400, f"metadata[{'k' * 41}]")
    assert (long_value.status_code, _error(long_value)["param"]) == (400, "metadata[note]")
    assert at_limits.status_code == 200


def test_updates_count_the_keys_already_kept(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({"metadata": {f"k{n}": "v" for n in range(50)}})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.customers.update(customer.id, {"metadata": {"one_more": "v"}})
    sandbox.client.v1.customers.update(customer.id, {"metadata": {"k0": "", "one_more": "v"}})

    assert raised.value.param == "metadata"
    assert len(sandbox.client.v1.customers.retrieve(customer.id).metadata.to_dict()) == 50


def test_only_expandable_fields_expand(sandbox: SandboxHandle) -> None:
    customer, method = sandbox.saved_card("expand@example.com")
    intent = sandbox.client.v1.payment_intents.create(
        {"amount": 500, "currency": "usd", "customer": customer, "payment_method": method}
    )

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.payment_intents.retrieve(intent.id, {"expand": ["amount"]})
    expanded = sandbox.client.v1.payment_intents.retrieve(
        intent.id, {"expand": ["customer", "payment_method.customer"]}
    )
    listed = sandbox.client.v1.payment_intents.list({"expand": ["data.customer"]})

    assert str(raised.value.user_message) == "This property cannot be expanded (amount)."
    assert raised.value.param == "expand"
    assert not isinstance(expanded.customer, str) and expanded.customer is not None
    assert expanded.customer.id == customer
    assert not isinstance(expanded.payment_method, str) and expanded.payment_method is not None
    assert not isinstance(expanded.payment_method.customer, str)
    assert not isinstance(listed.data[0].customer, str)


def test_expansion_stops_at_four_levels(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sandbox.client.v1.customers.retrieve(customer.id, {"expand": ["a.b.c.d.e"]})

    assert raised.value.param == "expand"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/payment_intents/pi_missing", "intent"),
        ("/v1/setup_intents/seti_missing", "intent"),
        ("/v1/customers/cus_missing", "id"),
    ],
)
def test_404s_name_the_param_stripe_names(
    sandbox: SandboxHandle, path: str, param: str
) -> None:
    answer = httpx.get(
        f"{sandbox.url}{path}", headers={"Authorization": f"Bearer {sandbox.secret_key}"}
    )

    assert answer.status_code == 404
    assert _error(answer)["code"] == "resource_missing"
    assert _error(answer)["param"] == param
