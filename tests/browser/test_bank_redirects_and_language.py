"""iDEAL and Bancontact through the bank's page, and the save-a-method page in Japanese, in
Debian's Chromium against the mounted sandbox."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from processor.charging import ChargeRequest, charge_off_session
from processor.db.models import Charge, Customer, PaymentMethod
from tests.browser.test_checkout import fill_address, payment_error, sign_up, success_message
from tests.fixtures.app import LiveApp
from tests.fixtures.browser import pick_test_method as pick

pytestmark = pytest.mark.browser


@pytest.fixture
def live(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app()


@pytest.fixture
def euro_shop(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app(currency="eur")


def saved_methods(live: LiveApp) -> list[PaymentMethod]:
    with live.runtime.sessions() as session:
        return list(session.scalars(select(PaymentMethod)))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ideal_authorized_saves_sepa_debit_that_is_charged_later(
    euro_shop: LiveApp, page: Page
) -> None:
    sign_up(page, euro_shop)
    page.get_by_label("iDEAL").check()
    page.locator("#payment-element").get_by_label("Bank").select_option("ing")
    fill_address(page)
    page.get_by_role("button", name="Save payment method").click()

    page.get_by_role("button", name="Authorize test payment").click()

    expect(success_message(page)).to_have_text("SEPA Direct Debit ••3000, from iDEAL is saved.")
    assert "setup_intent" not in page.url
    wait_for(
        lambda: (
            len(saved_methods(euro_shop)) == 1
            and saved_methods(euro_shop)[0].generated_from is not None
        )
    )
    [method] = saved_methods(euro_shop)
    assert (method.type, method.sepa_last4, method.generated_from) == (
        "sepa_debit",
        "3000",
        "ideal",
    )

    euro_shop.sandbox.set_sepa_settlement_delay(None)
    assert method.customer_id is not None
    outcome = charge_off_session(
        euro_shop.runtime, ChargeRequest(method.customer_id, 2000, "eur", reference="order-1")
    )
    assert (outcome.status, outcome.payment_method_id) == ("processing", method.id)
    euro_shop.sandbox.settle_processing()

    def charge_status() -> str:
        with euro_shop.runtime.sessions() as session:
            return session.scalars(select(Charge.status)).one()

    wait_for(lambda: charge_status() == "succeeded")


def test_bancontact_failed_at_the_bank_leaves_the_form_usable(
    euro_shop: LiveApp, page: Page
) -> None:
    sign_up(page, euro_shop)
    page.get_by_label("Bancontact").check()
    fill_address(page)
    page.get_by_role("button", name="Save payment method").click()

    page.get_by_role("button", name="Fail test payment").click()

    expect(payment_error(page)).to_contain_text("authentication failed")
    euro_shop.sandbox.wait_for_deliveries()
    assert saved_methods(euro_shop) == []
    pick(page, "Visa 4242")
    fill_address(page)  # the page came back from the bank: a fresh form
    page.get_by_role("button", name="Save payment method").click()
    expect(success_message(page)).to_have_text("Visa ending in 4242 (expires 12/34) is saved.")


def test_the_whole_checkout_in_japanese(live: LiveApp, new_page: Callable[..., Page]) -> None:
    page = new_page(locale="ja-JP")
    page.goto(f"{live.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("heading", name="お支払い方法の登録")).to_be_visible()
    page.get_by_label("メールアドレス").fill("hanako@example.jp")
    page.get_by_label("氏名").fill("山田 花子")
    page.get_by_role("button", name="次へ").click()

    expect(page.get_by_role("heading", name="2. お支払い方法")).to_be_visible()
    element = page.locator("#payment-element")
    expect(element.get_by_label("カード番号")).to_be_visible()
    pick(page, "Visa 4242")
    address = page.locator("#address-element")
    address.get_by_label("住所 1").fill("千代田区千代田1-1")
    address.get_by_label("市区町村").fill("東京都")
    address.get_by_label("郵便番号").fill("100-0001")
    address.get_by_label("国または地域").select_option("JP")
    page.get_by_role("button", name="お支払い方法を登録する").click()

    expect(success_message(page)).to_have_text(
        "Visa（末尾 4242）（有効期限 12/34）を登録しました。"  # noqa: RUF001
    )
    with live.runtime.sessions() as session:
        assert session.scalars(select(Customer.preferred_locale)).one() == "ja"

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(
        page.get_by_role("heading", name=re.compile("payment method", re.I)).first
    ).to_be_visible()
