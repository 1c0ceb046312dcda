"""Steps the save-a-method tests share: sign up, make a token, confirm, finish 3-D Secure."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from processor.db.models import PaymentMethod, SetupAttempt
from tests.fixtures.app import LiveApp


def sign_up(
    client: httpx.Client, email: str = "ada@example.com", name: str = "Ada Lovelace", **extra: Any
) -> dict[str, Any]:
    answer = client.post("/customers", json={"email": email, "name": name, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def confirmation_token(live: LiveApp, payment_method: str = "pm_card_visa") -> str:
    """A ConfirmationToken made with Stripe's test helper, as a browser would have made one."""
    token = live.runtime.stripe.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": payment_method}
    )
    return str(token.id)


def confirm(client: httpx.Client, token_id: object) -> httpx.Response:
    return client.post("/create-confirm-intent", json={"confirmationTokenId": token_id})


def authenticate(live: LiveApp, client_secret: str, outcome: str) -> dict[str, Any]:
    """Finish 3-D Secure the way the Stripe.js stand-in does: publishable key + client secret."""
    answer = httpx.post(
        f"{live.url}/sandbox/stripe/v1/_sandbox/authenticate",
        data={
            "intent": client_secret.split("_secret_")[0],
            "client_secret": client_secret,
            "outcome": outcome,
        },
        headers={"Authorization": f"Bearer {live.settings.stripe_publishable_key}"},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def attempts(live: LiveApp) -> list[SetupAttempt]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(SetupAttempt).order_by(SetupAttempt.id)))


def saved_methods(live: LiveApp) -> list[PaymentMethod]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(PaymentMethod)))
