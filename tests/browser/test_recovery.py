"""The recovery loop in Debian's Chromium: a real failed off-session charge in the mounted
sandbox, the email the in-app notifier sends to a real SMTP server, the link in that email,
the recovery page, Stripe.js (the sandbox's stand-in), the `payment_intent.succeeded`
webhook, and the case marked recovered."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from processor.db.models import StripeEvent
from tests.fixtures.app import LiveApp
from tests.fixtures.browser import PageRecord, no_policy_violations
from tests.fixtures.browser import pick_test_method as pick
from tests.fixtures.smtp import ReceivedMessage, SmtpServer
from tests.integration.recovery.flow import (
    case_status,
    failed_charge,
    link_token,
    stand_in,
)

pytestmark = pytest.mark.browser
CHALLENGE = "3D Secure authentication"
WEBHOOK_WAIT_MS = 15_000


@pytest.fixture
def live(live_app: Callable[..., LiveApp], smtp_server: SmtpServer) -> LiveApp:
    """The app with its notifier running, sending to the test's SMTP server."""
    return live_app(secret_key="b" * 40, smtp_url=smtp_server.url, run_notifier=True)


def link_in(mail: ReceivedMessage, live: LiveApp) -> str:
    links = set(re.findall(rf"{re.escape(live.url)}/recover/[\w.\-]+", mail.body("plain")))
    assert len(links) == 1, links
    [link] = links
    assert link in mail.body("html")
    return link


def succeeded_events(live: LiveApp, payment_intent_id: str) -> list[str]:
    with live.runtime.sessions() as session:
        return list(
            session.scalars(
                select(StripeEvent.status).where(
                    StripeEvent.object_id == payment_intent_id,
                    StripeEvent.type == "payment_intent.succeeded",
                )
            )
        )


def test_authentication_from_the_email_to_the_webhook(
    live: LiveApp,
    smtp_server: SmtpServer,
    page: Page,
    page_record: PageRecord,
    remember_state: Callable[..., Any],
) -> None:
    case = failed_charge(live, "pm_card_authenticationRequired")
    [mail] = smtp_server.wait_for(1, timeout=20)
    assert mail.message["Subject"] == "Please confirm your payment of $19.99 to Example Shop"

    page.goto(link_in(mail, live))
    expect(page.get_by_role("heading", name="$19.99 to pay")).to_be_focused()
    expect(page.locator("#saved-method")).to_have_text(
        "You will pay with your Visa ending in 3184."
    )
    remember_state(page, "authentication-needed")
    page.get_by_role("button", name="Confirm $19.99").click()

    dialog = page.get_by_role("dialog", name=CHALLENGE)
    expect(dialog).to_be_visible()
    remember_state(page, "challenge")
    dialog.get_by_role("button", name="Complete").click()

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible(timeout=WEBHOOK_WAIT_MS)
    expect(page.locator("#done-message")).to_have_text("Your payment of $19.99 is complete.")
    assert case_status(live, case.id) == "recovered"
    assert succeeded_events(live, case.payment_intent_id) == ["processed"]

    page.reload()
    expect(page.get_by_role("heading", name="Already paid")).to_be_visible()
    no_policy_violations(page_record)


def test_new_card_from_the_email_to_the_webhook_on_a_phone(
    live: LiveApp,
    smtp_server: SmtpServer,
    new_page: Callable[..., Page],
    page_record: PageRecord,
    remember_state: Callable[..., Any],
) -> None:
    case = failed_charge(live, "pm_card_chargeCustomerFail")
    [mail] = smtp_server.wait_for(1, timeout=20)
    assert mail.message["Subject"] == "Your payment of $19.99 to Example Shop did not go through"

    page = new_page(width=360, height=740)
    page.goto(link_in(mail, live))
    expect(page.locator("#pay-reason")).to_contain_text("We could not charge your payment method")
    pick(page, "Visa 4242")
    remember_state(page, "new-card")
    page.get_by_role("button", name="Pay $19.99").click()

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible(timeout=WEBHOOK_WAIT_MS)
    assert case_status(live, case.id) == "recovered"
    # The new card is the customer's now, for the next off-session charge.
    client = stand_in(live).client
    intent = client.v1.payment_intents.retrieve(case.payment_intent_id)
    saved = client.v1.customers.payment_methods.list(case.customer_id)
    assert intent.status == "succeeded"
    assert intent.payment_method in {method.id for method in saved.data}
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    no_policy_violations(page_record)


def test_japanese_customer_pays_in_yen_with_3d_secure(
    live: LiveApp,
    smtp_server: SmtpServer,
    new_page: Callable[..., Page],
    remember_state: Callable[..., Any],
) -> None:
    case = failed_charge(
        live,
        "pm_card_chargeCustomerFail",
        email="hanako@example.jp",
        name="山田 花子",
        locale="ja",
        currency="jpy",
        amount=4800,
    )
    [mail] = smtp_server.wait_for(1, timeout=20)
    assert "￥4,800" in mail.message["Subject"]

    page = new_page(locale="ja-JP")  # a Japanese browser: Accept-Language says ja
    page.goto(link_in(mail, live))
    expect(page.get_by_role("heading", name="お支払い金額：￥4,800")).to_be_visible()  # noqa: RUF001
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    pick(page, "Visa 3184")
    page.get_by_role("button", name="￥4,800 を支払う").click()
    dialog = page.get_by_role("dialog", name=CHALLENGE)
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Complete").click()

    expect(page.get_by_role("heading", name="ありがとうございました")).to_be_visible(
        timeout=WEBHOOK_WAIT_MS
    )
    remember_state(page, "paid-in-japanese")
    assert case_status(live, case.id) == "recovered"


def test_failed_authentication_then_a_new_card(
    live: LiveApp, smtp_server: SmtpServer, page: Page
) -> None:
    case = failed_charge(live, "pm_card_authenticationRequired")
    [mail] = smtp_server.wait_for(1, timeout=20)
    page.goto(link_in(mail, live))
    page.get_by_role("button", name="Confirm $19.99").click()
    page.get_by_role("dialog", name=CHALLENGE).get_by_role("button", name="Fail").click()

    expect(page.get_by_role("alert")).to_have_text(
        "Your bank could not confirm the payment. Please try again."
    )
    assert stand_in(live).control.wait_for_deliveries(10)
    assert case_status(live, case.id) == "open"
    page.get_by_role("button", name="Pay with a different card instead").click()
    pick(page, "Visa 4242")
    page.get_by_role("button", name="Pay $19.99").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible(timeout=WEBHOOK_WAIT_MS)
    assert case_status(live, case.id) == "recovered"


def test_expired_link_sends_a_fresh_one(
    live: LiveApp, smtp_server: SmtpServer, page: Page, remember_state: Callable[..., Any]
) -> None:
    case = failed_charge(live, "pm_card_authenticationRequired", email="ada.lovelace@example.com")
    smtp_server.wait_for(1, timeout=20)
    page.goto(f"{live.url}/recover/{link_token(live, case.id, age=timedelta(days=8))}")
    expect(page.get_by_role("heading", name="This link has expired")).to_be_focused()
    remember_state(page, "expired")
    page.get_by_role("button", name="Email me a new link").click()
    expect(page.locator("#fresh-sent")).to_have_text("We sent a new link to a•••@example.com.")

    _first, fresh = smtp_server.wait_for(2, timeout=20)
    assert fresh.message["Subject"] == "Your new link to confirm your payment of $19.99"
    page.goto(link_in(fresh, live))
    expect(page.get_by_role("button", name="Confirm $19.99")).to_be_visible()


def test_tampered_link_is_not_found(live: LiveApp, page: Page) -> None:
    case = failed_charge(live, "pm_card_authenticationRequired")
    token = link_token(live, case.id)
    response = page.goto(f"{live.url}/recover/{token[:-4]}AAAA")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="This link is not valid")).to_be_visible()
