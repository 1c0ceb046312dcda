"""POST /customers: the Stripe Customer, its row, and the signed session cookie."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from starlette.responses import Response

from processor.config import Settings
from processor.db.models import Customer
from processor.web.session import COOKIE_NAME, start_session
from tests.fixtures.app import LiveApp
from tests.integration.checkout.helpers import sign_up


def _customer_rows(live: LiveApp) -> list[Customer]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(Customer)))


def test_sign_up_creates_the_customer_stores_it_and_starts_a_session(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    answer = browser_client.post(
        "/customers", json={"email": " ada@example.com ", "name": "Ada  Lovelace", "locale": "ja"}
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"].startswith("cus_")
    assert body | {"id": None} == {
        "id": None,
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "locale": "ja",
    }
    at_stripe = live.runtime.stripe.v1.customers.retrieve(body["id"])
    assert (at_stripe.email, at_stripe.name, at_stripe.preferred_locales) == (
        "ada@example.com",
        "Ada Lovelace",
        ["ja"],
    )
    [row] = _customer_rows(live)
    assert (row.id, row.email, row.name, row.preferred_locale) == (
        body["id"],
        "ada@example.com",
        "Ada Lovelace",
        "ja",
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http:// here
    assert browser_client.get("/customers/me").json()["id"] == body["id"]


def test_the_same_browser_and_email_reuse_the_customer(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    first = sign_up(browser_client, email="Ada@Example.com")
    again = sign_up(browser_client, email="ada@example.com", name="Ada L.")

    assert again["id"] == first["id"]
    assert len(_customer_rows(live)) == 1
    assert len(live.runtime.stripe.v1.customers.list().data) == 1


def test_another_browser_never_reaches_an_existing_customer(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    mine = sign_up(browser_client, email="ada@example.com")
    with httpx.Client(base_url=live.url, timeout=15) as other_browser:
        theirs = sign_up(other_browser, email="ada@example.com")

    assert theirs["id"] != mine["id"]
    assert browser_client.get("/customers/me").json()["id"] == mine["id"]


def test_a_different_email_in_the_same_browser_switches_to_a_new_customer(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    first = sign_up(browser_client, email="ada@example.com")
    second = sign_up(browser_client, email="grace@example.com", name="Grace Hopper")

    assert second["id"] != first["id"]
    assert browser_client.get("/customers/me").json()["email"] == "grace@example.com"
    with live.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_malformed_email_gets_a_field_error_and_changes_nothing(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    for email in ["", "ada", "ada@", "ada@example", "a da@example.com", "ada@@example.com"]:
        answer = browser_client.post("/customers", json={"email": email, "name": "Ada"})
        assert answer.status_code == 400, email
        assert answer.json() == {
            "error": {
                "code": "invalid_email",
                "message": "Enter a valid email address.",
                "field": "email",
            }
        }
        assert "set-cookie" not in answer.headers
    missing_name = browser_client.post("/customers", json={"email": "ada@example.com"})
    assert missing_name.status_code == 400
    assert missing_name.json()["error"]["field"] == "name"
    bad_locale = browser_client.post(
        "/customers", json={"email": "ada@example.com", "name": "Ada", "locale": "<script>"}
    )
    assert bad_locale.json()["error"]["field"] == "locale"
    assert _customer_rows(live) == []
    assert live.runtime.stripe.v1.customers.list().data == []


def test_sign_up_is_502_when_stripe_fails(live_app) -> None:  # type: ignore[no-untyped-def]
    live = live_app(stripe_max_network_retries=0)
    live.sandbox.inject_errors(1.0)
    with httpx.Client(base_url=live.url, timeout=15) as client:
        answer = client.post("/customers", json={"email": "ada@example.com", "name": "Ada"})

    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "stripe_unavailable"
    assert "injected" not in answer.text
    assert "set-cookie" not in answer.headers
    assert _customer_rows(live) == []


def test_the_session_cookie_is_secure_behind_https() -> None:
    response = Response()
    start_session(response, Settings(public_base_url="https://shop.example"), "cus_123")

    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
