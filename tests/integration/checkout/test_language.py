"""GET /config names the page's language: the switch, Accept-Language, then the stored one."""

from __future__ import annotations

import httpx

from tests.integration.checkout.helpers import sign_up


def _locale(client: httpx.Client, accept: str, **cookies: str) -> str:
    for name, value in cookies.items():
        client.cookies.set(name, value)
    answer = client.get("/config", headers={"Accept-Language": accept})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["locale"])


def test_the_browser_language_then_the_stored_one(browser_client: httpx.Client) -> None:
    assert _locale(browser_client, "ja-JP,ja;q=0.9") == "ja"
    assert _locale(browser_client, "fr-FR") == "en"

    sign_up(browser_client, locale="ja-JP")

    assert _locale(browser_client, "fr-FR") == "ja"
    assert _locale(browser_client, "en-GB,en;q=0.8") == "en"


def test_the_switch_on_the_page_wins(browser_client: httpx.Client) -> None:
    assert _locale(browser_client, "ja", lang="en") == "en"
    assert _locale(browser_client, "en", lang="ja") == "ja"
