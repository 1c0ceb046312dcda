"""Card-testing defences on sign-up and confirm: refused with 429 before anything reaches Stripe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx

from processor.config import RateLimit
from tests.fixtures.app import LiveApp
from tests.fixtures.database import FakeClock
from tests.integration.checkout.helpers import attempts, confirm, confirmation_token, sign_up

DECLINING = "pm_card_chargeDeclined"


def _created_customers(live: LiveApp) -> int:
    return len([e for e in live.sandbox.events if e["type"] == "customer.created"])


def _setup_intents_created(live: LiveApp) -> int:
    return len([e for e in live.sandbox.events if e["type"] == "setup_intent.created"])


def test_sign_ups_from_one_address_stop_at_the_limit_until_the_window_passes(
    live_app: Callable[..., LiveApp], clock: FakeClock
) -> None:
    live = live_app(clock=clock)  # the default: 10 sign-ups per address per hour
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        answers = [
            client.post("/customers", json={"email": f"t{n}@example.com", "name": "T"})
            for n in range(12)
        ]
        assert [a.status_code for a in answers] == [200] * 10 + [429] * 2
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 2 * 3600
        assert _created_customers(live) == 10

        clock.advance(hours=2)
        assert sign_up(client, email="later@example.com")["email"] == "later@example.com"


def test_declines_on_one_customer_stop_at_the_limit_and_nothing_more_reaches_stripe(
    live_app: Callable[..., LiveApp],
) -> None:
    live = live_app(failed_setup_limit_per_customer=RateLimit(5, timedelta(days=1)))
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        sign_up(client)
        declined = [confirm(client, confirmation_token(live, DECLINING)) for _ in range(5)]
        assert [a.status_code for a in declined] == [402] * 5
        before = _setup_intents_created(live)

        refused = confirm(client, confirmation_token(live, "pm_card_visa"))

        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        assert _setup_intents_created(live) == before
        assert len(attempts(live)) == 5


def test_declines_from_one_address_are_limited_across_customers(
    live_app: Callable[..., LiveApp],
) -> None:
    live = live_app(failed_setup_limit_per_ip=RateLimit(3, timedelta(days=1)))
    statuses = []
    for n in range(4):
        with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
            sign_up(client, email=f"tester{n}@example.com")
            statuses.append(confirm(client, confirmation_token(live, DECLINING)).status_code)
    assert statuses == [402, 402, 402, 429]


def test_successful_setups_do_not_count_as_failures(live_app: Callable[..., LiveApp]) -> None:
    live = live_app(failed_setup_limit_per_customer=RateLimit(1, timedelta(days=1)))
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        sign_up(client)
        assert [confirm(client, confirmation_token(live)).status_code for _ in range(3)] == [
            200
        ] * 3


def test_sign_up_needs_a_solved_challenge_when_a_captcha_is_configured(
    live_app: Callable[..., LiveApp],
) -> None:
    live = live_app(captcha_provider="sandbox")
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        person = {"email": "ada@example.com", "name": "Ada"}
        missing = client.post("/customers", json=person)
        wrong = client.post("/customers", json={**person, "captchaToken": "guess"})
        assert (missing.status_code, missing.json()["error"]["code"]) == (400, "captcha_required")
        assert (wrong.status_code, wrong.json()["error"]["field"]) == (400, "captcha")
        assert _created_customers(live) == 0
        solved = client.post("/customers", json={**person, "captchaToken": "sandbox-captcha-pass"})
        assert solved.status_code == 200
        assert _created_customers(live) == 1
        assert client.get("/config").json()["captcha"]["provider"] == "sandbox"
