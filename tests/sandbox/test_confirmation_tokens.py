"""Confirmation tokens: single use, 12-hour lifetime (frozen with freezegun or the sandbox clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import stripe
from freezegun import freeze_time

from tests.fixtures.sandbox import RETURN_URL, SandboxHandle


def _confirm(sandbox: SandboxHandle, customer: str, token: str):
    return sandbox.client.v1.setup_intents.create(
        {
            "customer": customer,
            "confirm": True,
            "confirmation_token": token,
            "return_url": RETURN_URL,
        }
    )


def test_token_is_single_use(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_visa"}
    )
    intent = _confirm(sandbox, customer.id, token.id)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        _confirm(sandbox, customer.id, token.id)

    assert raised.value.http_status == 400
    assert raised.value.code == "confirmation_token_already_used"
    assert raised.value.param == "confirmation_token"
    assert sandbox.client.v1.confirmation_tokens.retrieve(token.id).setup_intent == intent.id


def test_token_expires_after_twelve_hours_with_freezegun(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    start = datetime.now(UTC)
    with freeze_time(start):
        token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
            {"payment_method": "pm_card_visa"}
        )
    assert token.expires_at == token.created + 12 * 3600

    with (
        freeze_time(start + timedelta(hours=12, seconds=1)),
        pytest.raises(stripe.InvalidRequestError) as raised,
    ):
        _confirm(sandbox, customer.id, token.id)

    assert raised.value.code == "confirmation_token_expired"


def test_token_still_valid_just_before_expiry(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_visa"}
    )

    sandbox.control.advance_clock(12 * 3600 - 5)

    assert _confirm(sandbox, customer.id, token.id).status == "succeeded"


def test_token_expiry_with_the_sandbox_clock(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_visa"}
    )

    sandbox.control.advance_clock(12 * 3600)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        _confirm(sandbox, customer.id, token.id)
    assert raised.value.code == "confirmation_token_expired"


def test_helper_refuses_raw_cards_but_takes_sepa(sandbox: SandboxHandle) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.test_helpers.confirmation_tokens.create(
            {"payment_method_data": {"type": "card"}}  # type: ignore[typeddict-item]
        )
    token = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {
            "payment_method_data": {
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE89370400440532013000"},
                "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"},
            }
        }
    )

    assert token.payment_method_preview.sepa_debit.country == "DE"


def test_unknown_token(sandbox: SandboxHandle) -> None:
    customer = sandbox.client.v1.customers.create({})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        _confirm(sandbox, customer.id, "ctoken_nothere")

    assert raised.value.code == "resource_missing"
