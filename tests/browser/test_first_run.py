"""A newcomer's first run: the README's `processor serve` with no settings at all, then the whole
story in Debian's Chromium: sign up, save a card whose later charges fail, charge it from the
sandbox control page, read the email in the sandbox mailbox, follow its link, pay with a new
card, and see the case recovered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.servers import free_port

pytestmark = pytest.mark.browser
START_TIMEOUT_SECONDS = 30
MAIL_WAIT_SECONDS = 30
SETTINGS_TO_CLEAR = (
    "DATABASE_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRETS",
    "STRIPE_API_BASE",
    "PUBLIC_BASE_URL",
    "SECRET_KEY",
    "SMTP_URL",
    "SANDBOX",
    "RUN_NOTIFIER",
)


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[str]:
    """`python -m processor serve` in an empty directory with a clean environment."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_TO_CLEAR}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start:\n{(tmp_path / 'serve.log').read_text()}")
            time.sleep(0.2)
        assert (tmp_path / "processor.db").exists(), "the SQLite file is created in place"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    banner = (tmp_path / "serve.log").read_text()
    assert f"Open {url}/" in banner


def wait_for_mail_link(page: Page, url: str) -> None:
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while True:
        page.goto(f"{url}/sandbox/mail/")
        links = page.locator("tbody a")
        if links.count() > 0:
            links.first.click()
            return
        assert time.monotonic() < deadline, "no recovery email reached the sandbox mailbox"
        time.sleep(0.5)


def test_newcomer_saves_a_card_charges_it_and_wins_the_payment_back(
    first_run: str, page: Page, remember_state
) -> None:  # type: ignore[no-untyped-def]
    url = first_run
    page.goto(f"{url}/")
    expect(page.get_by_text("Sandbox mode")).to_be_visible()
    page.locator("#signup-email").fill("newcomer@example.com")
    page.locator("#signup-name").fill("Grace Hopper")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label(re.compile("^Visa 0341")).check()
    page.get_by_label("Address line 1").fill("1 Harbour Street")
    page.get_by_label("City").fill("Arlington")
    page.get_by_label("Postal code").fill("22201")
    page.get_by_label("Country or region").select_option("US")
    page.get_by_role("button", name="Save payment method").click()
    expect(page.locator("#success-message")).to_contain_text("ending in 0341")
    remember_state(page, "saved")

    page.goto(f"{url}/sandbox")
    expect(page.get_by_text("Sandbox mode")).to_be_visible()
    page.get_by_role("button", name="Charge off-session").click()
    expect(page.locator("#charge-result")).to_contain_text("needs a new payment method")
    remember_state(page, "charged")

    wait_for_mail_link(page, url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("did not go through")
    page.locator("pre a[href*='/recover/']").first.click()
    remember_state(page, "recovery-page")

    page.get_by_label(re.compile("^Visa 4242")).check()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible(timeout=20_000)

    page.goto(f"{url}/sandbox")
    expect(page.locator("tr.case .case-status").first).to_have_text("recovered")
