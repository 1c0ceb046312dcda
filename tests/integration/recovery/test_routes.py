"""The recovery page's routes against the whole app in sandbox mode: a real failed charge, the
sandbox's webhooks, and the page's JSON companions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from processor.db.models import Notification, PaymentMethod
from tests.fixtures.app import LiveApp
from tests.integration.recovery.flow import case_status, failed_charge, link_token, stand_in

AUTH_CARD = "pm_card_authenticationRequired"
DECLINING_CARD = "pm_card_chargeCustomerFail"


@pytest.fixture
def app(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app(secret_key="r" * 40, merchant_name="Example Shop")


def _client(app: LiveApp) -> httpx.Client:
    return httpx.Client(base_url=app.url, timeout=10, headers={"origin": app.url})


def _post(app: LiveApp, path: str, body: object | None = None) -> httpx.Response:
    with _client(app) as client:
        return client.post(path, json={} if body is None else body)


def test_page_is_served_with_a_strict_policy(app: LiveApp) -> None:
    case = failed_charge(app, AUTH_CARD)
    token = link_token(app, case.id)
    with _client(app) as client:
        page = client.get(f"/recover/{token}")
        forged = client.get(f"/recover/{token[:-3]}abc")
    assert page.status_code == 200
    assert '<script src="/assets/recover.js" defer></script>' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert forged.status_code == 404 and "recover.js" in forged.text


def test_case_summary_for_an_authentication_case(app: LiveApp) -> None:
    case = failed_charge(app, AUTH_CARD)
    with _client(app) as client:
        answer = client.get(f"/recover/{link_token(app, case.id)}/case")
    assert answer.status_code == 200
    body = answer.json()
    assert body["state"] == "open"
    assert body["kind"] == "authentication_required"
    assert (body["amount"], body["currency"], body["amountDisplay"]) == (1999, "usd", "$19.99")
    assert body["paymentMethod"]["last4"] == "3184"
    assert body["merchantName"] == "Example Shop"
    assert body["linkExpired"] is False
    assert "secret" not in answer.text  # the client secret comes only from the POST


def test_summary_in_japanese_yen(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD, locale="ja", currency="jpy", amount=4800)
    with _client(app) as client:
        body = client.get(f"/recover/{link_token(app, case.id)}/case").json()
    assert (body["locale"], body["amountDisplay"], body["kind"]) == (
        "ja",
        "￥4,800",
        "payment_method_required",
    )


def test_forged_and_expired_links(app: LiveApp) -> None:
    case = failed_charge(app, AUTH_CARD)
    expired = link_token(app, case.id, age=timedelta(days=7, seconds=1))
    with _client(app) as client:
        forged = client.get(f"/recover/{expired[:-2]}xy/case")
        stale = client.get(f"/recover/{expired}/case")
        page = client.get(f"/recover/{expired}")
    assert forged.status_code == 404 and forged.json()["error"]["code"] == "link_invalid"
    assert stale.status_code == 410
    assert stale.json()["error"]["code"] == "link_expired" and stale.json()["linkExpired"]
    assert page.status_code == 200  # the page itself explains and offers a fresh link
    answer = _post(app, f"/recover/{expired}/payment-intent")
    assert answer.status_code == 410


def test_client_secret_is_handed_over_by_post_only(app: LiveApp) -> None:
    case = failed_charge(app, AUTH_CARD)
    token = link_token(app, case.id)
    answer = _post(app, f"/recover/{token}/payment-intent")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "requires_payment_method"
    assert body["clientSecret"].startswith(f"{case.payment_intent_id}_secret_")
    assert body["paymentMethod"] == case.payment_method_id
    assert answer.headers["cache-control"] == "no-store"
    with _client(app) as client:
        assert client.get(f"/recover/{token}/payment-intent").status_code == 405
        assert client.post(f"/recover/{token}/payment-intent", content=b"{}").status_code == 415
        foreign = client.post(
            f"/recover/{token}/payment-intent", json={}, headers={"origin": "https://evil.example"}
        )
        assert foreign.status_code == 403


def test_new_method_recovers_the_case_only_through_the_webhook(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD)
    assert case.kind == "payment_method_required"
    sandbox = stand_in(app)
    token = link_token(app, case.id)
    ctoken = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_visa", "setup_future_usage": "off_session"}
    )
    sandbox.control.pause_webhooks()
    answer = _post(app, f"/recover/{token}/confirm", {"confirmationTokenId": ctoken.id})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "succeeded", "clientSecret": None}
    # Stripe says paid, but until its webhook arrives the case stays open.
    assert case_status(app, case.id) == "open"
    sandbox.control.resume_webhooks()
    assert sandbox.control.wait_for_deliveries(10)
    assert case_status(app, case.id) == "recovered"
    with _client(app) as client:
        assert client.get(f"/recover/{token}/case").json()["state"] == "recovered"
    closed = _post(app, f"/recover/{token}/payment-intent")
    assert closed.status_code == 409 and closed.json()["error"]["state"] == "recovered"
    # The new card is kept for future off-session charges.
    intent = sandbox.client.v1.payment_intents.retrieve(case.payment_intent_id)
    methods = sandbox.client.v1.customers.payment_methods.list(case.customer_id)
    assert intent.payment_method in {m.id for m in methods.data}
    with app.runtime.sessions() as session:
        assert session.get(PaymentMethod, intent.payment_method) is not None


def test_new_method_that_needs_3d_secure(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD)
    sandbox = stand_in(app)
    ctoken = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_authenticationRequired", "setup_future_usage": "off_session"}
    )
    answer = _post(
        app, f"/recover/{link_token(app, case.id)}/confirm", {"confirmationTokenId": ctoken.id}
    )
    body = answer.json()
    assert body["status"] == "requires_action"
    assert body["clientSecret"].startswith(case.payment_intent_id)
    sandbox.control.authenticate(case.payment_intent_id, True)
    assert sandbox.control.wait_for_deliveries(10)
    assert case_status(app, case.id) == "recovered"


def test_declined_new_method_leaves_the_case_open(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD)
    sandbox = stand_in(app)
    ctoken = sandbox.client.v1.test_helpers.confirmation_tokens.create(
        {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
    )
    answer = _post(
        app, f"/recover/{link_token(app, case.id)}/confirm", {"confirmationTokenId": ctoken.id}
    )
    assert answer.status_code == 402
    assert answer.json()["error"]["code"] == "insufficient_funds"
    assert sandbox.control.wait_for_deliveries(10)
    assert case_status(app, case.id) == "open"


def test_confirm_needs_a_confirmation_token_id(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD)
    token = link_token(app, case.id)
    for body in ({}, {"confirmationTokenId": "pm_card_visa"}, {"confirmationTokenId": 7}):
        answer = _post(app, f"/recover/{token}/confirm", body)
        assert answer.status_code == 400
        assert answer.json()["error"]["field"] == "confirmationTokenId"


def test_canceled_payment_says_so(app: LiveApp) -> None:
    case = failed_charge(app, DECLINING_CARD)
    sandbox = stand_in(app)
    sandbox.client.v1.payment_intents.cancel(case.payment_intent_id)
    assert sandbox.control.wait_for_deliveries(10)
    with _client(app) as client:
        body = client.get(f"/recover/{link_token(app, case.id)}/case").json()
    assert body["state"] == "canceled"
    answer = _post(app, f"/recover/{link_token(app, case.id)}/payment-intent")
    assert answer.status_code == 409 and answer.json()["error"]["state"] == "canceled"


def test_fresh_link_for_an_expired_one_is_queued_and_rate_limited(app: LiveApp) -> None:
    case = failed_charge(app, AUTH_CARD, email="ada.lovelace@example.com")
    expired = link_token(app, case.id, age=timedelta(days=8))
    answer = _post(app, f"/recover/{expired}/fresh-link")
    assert answer.status_code == 202
    assert answer.json() == {"sentTo": "a•••@example.com"}
    again = _post(app, f"/recover/{expired}/fresh-link")
    assert again.status_code == 429 and int(again.headers["retry-after"]) > 0
    with app.runtime.sessions() as session:
        rows = list(
            session.scalars(
                select(Notification).where(
                    Notification.case_id == case.id, Notification.kind == "fresh_link"
                )
            )
        )
    assert [(r.status, r.dedup_key) for r in rows] == [("pending", f"case:{case.id}:fresh:1")]
    still_valid = _post(app, f"/recover/{link_token(app, case.id)}/fresh-link")
    assert still_valid.status_code == 400
    assert still_valid.json()["error"]["code"] == "link_still_valid"


def test_fresh_link_email_carries_a_working_link(live_app, smtp_server) -> None:  # type: ignore[no-untyped-def]
    import re

    from processor.notifier.runner import build_notifier
    from processor.notifier.smtp import SmtpMailer

    app = live_app(secret_key="r" * 40, smtp_url=smtp_server.url)
    case = failed_charge(app, AUTH_CARD)
    notifier = build_notifier(app.runtime, SmtpMailer.from_url(smtp_server.url))
    notifier.drain()  # the first email
    expired = link_token(app, case.id, age=timedelta(days=8))
    assert _post(app, f"/recover/{expired}/fresh-link").status_code == 202
    assert notifier.drain()["sent"] == 1
    _first, fresh = smtp_server.wait_for(2)
    assert fresh.message["Subject"] == "Your new link to confirm your payment of $19.99"
    [url] = set(re.findall(rf"{re.escape(app.url)}/recover/[\w.\-]+", fresh.body("plain")))
    with _client(app) as client:
        assert client.get(url).status_code == 200
        assert client.get(f"{url}/case").json()["linkExpired"] is False


def test_one_link_cannot_test_a_stack_of_cards(live_app: Callable[..., LiveApp]) -> None:
    app = live_app(secret_key="r" * 40)  # the default: 5 attempts per case per hour
    case = failed_charge(app, DECLINING_CARD)
    sandbox = stand_in(app)
    path = f"/recover/{link_token(app, case.id)}/confirm"
    statuses = []
    for _ in range(7):
        ctoken = sandbox.client.v1.test_helpers.confirmation_tokens.create(
            {"payment_method": "pm_card_visa_chargeDeclinedLostCard"}
        )
        answer = _post(app, path, {"confirmationTokenId": ctoken.id})
        statuses.append(answer.status_code)
        if answer.status_code == 402:
            assert answer.json()["error"] == {
                "code": "card_declined",
                "message": "Your card was declined.",
            }
    assert statuses == [402] * 5 + [429] * 2
    assert "retry-after" in answer.headers
    # The page's other way to pay counts against the same case.
    assert _post(app, f"/recover/{link_token(app, case.id)}/payment-intent").status_code == 429
    with _client(app) as client:
        summary = client.get(f"/recover/{link_token(app, case.id)}/case").json()
    assert summary["declineCode"] == "card_declined"
