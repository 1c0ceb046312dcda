"""API versions: the `Stripe-Version` header, the account default, and version-gated rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from processor.config import SettingsError, load_settings
from processor.sandbox import Sandbox, create_sandbox_app
from processor.sandbox.versions import CHANGES, applies
from tests.fixtures.sandbox import SandboxHandle

CLOVER = "2025-10-29.clover"


def _post(
    sandbox: SandboxHandle, path: str, data: dict[str, Any], version: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
    if version:
        headers["Stripe-Version"] = version
    return httpx.post(f"{sandbox.url}{path}", data=data, headers=headers)


def test_every_answer_names_the_version_it_ran_at(sandbox: SandboxHandle) -> None:
    pinned = _post(sandbox, "/v1/customers", {})
    older = _post(sandbox, "/v1/customers", {}, CLOVER)

    assert pinned.headers["Stripe-Version"] == stripe.api_version
    assert older.headers["Stripe-Version"] == CLOVER


def test_a_malformed_version_is_refused(sandbox: SandboxHandle) -> None:
    answer = _post(sandbox, "/v1/customers", {}, "yesterday")

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Invalid Stripe API version: yesterday"


def test_payment_method_types_is_writable_before_endive(sandbox: SandboxHandle) -> None:
    params = {
        "amount": "2000",
        "currency": "usd",
        "payment_method_types[]": "card",
        "payment_method": "pm_card_visa",
        "confirm": "true",
    }
    answer = _post(sandbox, "/v1/payment_intents", params, CLOVER)

    assert answer.status_code == 200, answer.text
    intent = answer.json()
    assert intent["status"] == "succeeded"
    assert intent["payment_method_types"] == ["card"]
    assert intent["automatic_payment_methods"] is None


def test_the_refusal_names_the_request_version(sandbox: SandboxHandle) -> None:
    params = {"payment_method_types[]": "card"}
    answer = _post(sandbox, "/v1/setup_intents", params, "2026-09-30.endive")

    error = answer.json()["error"]
    assert answer.status_code == 400
    assert error["code"] == "payment_method_types_no_longer_supported"
    assert "in API version 2026-09-30.endive." in error["message"]


def test_confirm_never_takes_payment_method_types(sandbox: SandboxHandle) -> None:
    intent = _post(sandbox, "/v1/setup_intents", {}, CLOVER).json()
    answer = _post(
        sandbox,
        f"/v1/setup_intents/{intent['id']}/confirm",
        {"payment_method_types[]": "card", "payment_method": "pm_card_visa"},
        CLOVER,
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "parameter_unknown"


def test_return_url_rule_only_from_endive(sandbox: SandboxHandle) -> None:
    params = {"payment_method": "pm_card_authenticationRequired", "confirm": "true"}

    older = _post(sandbox, "/v1/setup_intents", params, CLOVER)
    current = _post(sandbox, "/v1/setup_intents", params)

    assert older.status_code == 200, older.text
    assert older.json()["status"] == "requires_action"
    assert current.status_code == 400
    assert current.json()["error"]["param"] == "return_url"


def test_automatic_payment_methods_off_before_2023_08_16(sandbox: SandboxHandle) -> None:
    before = _post(sandbox, "/v1/setup_intents", {}, "2023-08-15")
    after = _post(sandbox, "/v1/setup_intents", {}, "2023-08-16")

    assert before.json()["automatic_payment_methods"] is None
    assert after.json()["automatic_payment_methods"] == {"allow_redirects": "always", "enabled": True}


def test_the_account_default_applies_without_a_header() -> None:
    from starlette.testclient import TestClient

    app = create_sandbox_app(secret_key="sk_test_versions_default", api_version=CLOVER)
    sandbox: Sandbox = app.state.sandbox
    with TestClient(app) as client:
        answer = client.post(
            "/v1/setup_intents",
            data={"payment_method_types[]": "card"},
            headers={"Authorization": "Bearer sk_test_versions_default"},
        )
        events = client.get(
            "/v1/events", headers={"Authorization": "Bearer sk_test_versions_default"}
        ).json()

    assert answer.status_code == 200, answer.text
    assert answer.headers["Stripe-Version"] == CLOVER
    assert sandbox.api_version == CLOVER
    assert [event["api_version"] for event in events["data"]] == [CLOVER]


def test_events_are_rendered_at_the_account_default(sandbox: SandboxHandle) -> None:
    _post(sandbox, "/v1/customers", {}, CLOVER)

    (event,) = sandbox.client.v1.events.list().data
    assert event.api_version == stripe.api_version


def test_a_malformed_default_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Stripe API version"):
        create_sandbox_app(api_version="latest")


def test_the_version_table() -> None:
    assert applies("2026-10-28.endive", "payment_method_types_refused")
    assert applies("2026-09-30.endive", "payment_method_types_refused")
    assert not applies(CLOVER, "payment_method_types_refused")
    assert applies(CLOVER, "automatic_payment_methods_by_default")
    assert all(change.source.startswith("https://docs.stripe.com/") for change in CHANGES.values())


def test_the_in_app_default_is_a_setting() -> None:
    assert load_settings({}, env_file=None).sandbox_api_version is None
    settings = load_settings({"SANDBOX_API_VERSION": CLOVER}, env_file=None)
    assert settings.sandbox_api_version == CLOVER
    with pytest.raises(SettingsError, match="SANDBOX_API_VERSION"):
        load_settings({"SANDBOX_API_VERSION": "soon"}, env_file=None)
