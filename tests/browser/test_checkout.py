"""The save-a-method page in Debian's Chromium, end to end against the mounted sandbox:
the real page, the Stripe.js stand-in, our routes, the database."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from processor.db.models import SetupAttempt
from tests.fixtures.app import LiveApp
from tests.fixtures.browser import PageRecord, no_policy_violations
from tests.fixtures.browser import pick_test_method as pick

pytestmark = pytest.mark.browser


@pytest.fixture
def live(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app()


def sign_up(page: Page, live: LiveApp, email: str = "ada@example.com") -> None:
    page.goto(f"{live.url}/")
    page.locator("#signup-email").fill(email)
    page.locator("#signup-name").fill("Ada Lovelace")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="2. Payment method")).to_be_visible()
    expect(page.get_by_role("button", name="Save payment method")).to_be_enabled()


def fill_address(page: Page) -> None:
    page.get_by_label("Address line 1").fill("12 Analytical Row")
    page.get_by_label("City").fill("London")
    page.get_by_label("Postal code").fill("N1 9GU")
    page.get_by_label("Country or region").select_option("GB")


def save(page: Page) -> None:
    page.get_by_role("button", name="Save payment method").click()


def success_message(page: Page) -> Any:
    return page.locator("#success-message")


def payment_error(page: Page) -> Any:
    return page.locator("#payment-form").get_by_role("alert")


def attempt_statuses(live: LiveApp) -> list[str]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(SetupAttempt.status).order_by(SetupAttempt.id)))


def test_saving_a_visa(
    live: LiveApp, page: Page, page_record: PageRecord, remember_state: Callable[..., None]
) -> None:
    sign_up(page, live)
    expect(page.get_by_text("Stripe sandbox")).to_be_visible()
    pick(page, "Visa 4242")
    fill_address(page)
    remember_state(page, "filled")
    save(page)

    expect(success_message(page)).to_have_text("Visa ending in 4242 (expires 12/34) is saved.")
    expect(page.get_by_role("heading", name="Payment method saved")).to_be_focused()
    assert attempt_statuses(live) == ["succeeded"]
    no_policy_violations(page_record)


def test_three_d_secure_completed(
    live: LiveApp, page: Page, remember_state: Callable[..., None]
) -> None:
    sign_up(page, live)
    pick(page, "Visa 3155")
    fill_address(page)
    save(page)

    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(dialog).to_be_visible()
    remember_state(page, "challenge")
    dialog.get_by_role("button", name="Complete").click()

    expect(success_message(page)).to_have_text("Visa ending in 3155 (expires 12/34) is saved.")
    expect(dialog).to_have_count(0)


def test_three_d_secure_failed_leaves_the_form_usable(
    live: LiveApp, page: Page, remember_state: Callable[..., None]
) -> None:
    sign_up(page, live)
    pick(page, "Visa 3155")
    fill_address(page)
    save(page)
    page.get_by_role("dialog", name="3D Secure authentication").get_by_role(
        "button", name="Fail"
    ).click()

    expect(payment_error(page)).to_contain_text("authentication failed")
    remember_state(page, "authentication-failed")
    expect(page.get_by_role("button", name="Save payment method")).to_be_enabled()
    expect(page.get_by_role("dialog")).to_have_count(0)

    pick(page, "Visa 4242")
    expect(payment_error(page)).to_be_hidden()
    save(page)
    expect(success_message(page)).to_contain_text("Visa ending in 4242")
    assert attempt_statuses(live) == ["requires_payment_method", "succeeded"]


def test_a_card_declined_at_setup_shows_the_reason(
    live: LiveApp, page: Page, remember_state: Callable[..., None]
) -> None:
    sign_up(page, live)
    pick(page, "Visa 0002")
    fill_address(page)
    save(page)

    expect(payment_error(page)).to_have_text("Your card was declined.")
    remember_state(page, "declined")
    expect(page.get_by_role("button", name="Save payment method")).to_be_enabled()
    expect(page.get_by_label("Card number")).to_be_editable()
    assert attempt_statuses(live) == ["requires_payment_method"]


def test_incomplete_details_are_caught_before_anything_is_sent(live: LiveApp, page: Page) -> None:
    sign_up(page, live)
    page.get_by_label("Card number").fill("4242 4242 42")
    save(page)

    expect(payment_error(page)).to_have_text("Your card number is incomplete.")
    expect(page.get_by_label("Card number")).to_be_focused()
    assert attempt_statuses(live) == []


def test_a_spinner_shows_and_the_form_is_disabled_while_saving(live: LiveApp, page: Page) -> None:
    sign_up(page, live)
    pick(page, "Visa 4242")
    fill_address(page)
    live.sandbox.set_latency(0.6)
    save(page)

    button = page.get_by_role("button", name="Save payment method")
    expect(button).to_have_attribute("aria-busy", "true")
    expect(button.locator(".spinner")).to_be_visible()
    expect(button).to_be_disabled()
    expect(page.get_by_label("Card number")).to_be_disabled()
    expect(success_message(page)).to_contain_text("Visa ending in 4242", timeout=15_000)


def test_saving_a_sepa_account(live: LiveApp, page: Page) -> None:
    sign_up(page, live)
    page.get_by_label("SEPA Direct Debit").check()
    pick(page, "SEPA DE89")
    fill_address(page)
    save(page)

    expect(success_message(page)).to_contain_text("Bank account (SEPA Direct Debit) ending in 3000")


def test_the_whole_flow_works_from_the_keyboard(live: LiveApp, page: Page) -> None:
    page.goto(f"{live.url}/")
    expect(page.locator("#signup-email")).to_be_visible()
    _tab_to(page, "signup-email")
    page.keyboard.type("ada@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Save payment method")).to_be_enabled()

    # A radio group is one tab stop; the arrow keys move the choice within it.
    _tab_to(page, None, label="Visa 4242")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label(re.compile("^Visa 3155"))).to_be_checked()
    for label, text in [
        ("Address line 1", "12 Analytical Row"),
        ("City", "London"),
        ("Postal code", "N1 9GU"),
    ]:
        _tab_to(page, None, label=label)
        page.keyboard.type(text)
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(dialog.get_by_role("button", name="Complete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(success_message(page)).to_contain_text("Visa ending in 3155")


def _tab_to(page: Page, element_id: str | None, *, label: str | None = None) -> None:
    """Press Tab until focus reaches the element (by id, or by its label's start); bounded."""
    for _ in range(40):
        reached = page.evaluate(
            """([id, label]) => {
                const el = document.activeElement;
                if (!el) return false;
                if (id) return el.id === id;
                const text = (el.labels && el.labels[0] ? el.labels[0].textContent : '').trim();
                return text.startsWith(label);
            }""",
            [element_id, label],
        )
        if reached:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {element_id or label}")


def test_works_at_360_pixels_wide(
    live: LiveApp, new_page: Callable[..., Page], remember_state: Callable[..., None]
) -> None:
    page = new_page(width=360, height=740)
    sign_up(page, live)
    remember_state(page, "narrow-form")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    pick(page, "Visa 3155")
    fill_address(page)
    save(page)
    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    dialog.get_by_role("button", name="Complete").click()

    expect(success_message(page)).to_contain_text("Visa ending in 3155")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_sign_up_with_the_sandbox_challenge(
    live_app: Callable[..., LiveApp], page: Page, page_record: PageRecord
) -> None:
    live = live_app(captcha_provider="sandbox")
    page.goto(f"{live.url}/")
    page.locator("#signup-email").fill("ada@example.com")
    page.locator("#signup-name").fill("Ada Lovelace")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#signup-captcha-error")).to_have_text(
        "Complete the challenge before signing up."
    )
    page.get_by_label("I am not a robot (sandbox challenge)").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="2. Payment method")).to_be_visible()
    no_policy_violations(page_record)
