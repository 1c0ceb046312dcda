"""`/ops` is off without OPS_TOKEN, refuses missing or wrong tokens, and replays with CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from processor.app import create_app
from processor.db.engine import unit_of_work
from processor.db.models import Notification, RecoveryCase
from processor.ops import report
from processor.runtime import build_runtime
from processor.web import ops as ops_page

TOKEN = "ops-token-for-tests-0123456789"


@pytest.fixture
def ops_client(make_settings, engine, clock):  # type: ignore[no-untyped-def]
    runtime = build_runtime(
        make_settings(ops_token=TOKEN, sandbox=False), engine=engine, clock=clock
    )
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:8000") as client:
        client.runtime = runtime  # type: ignore[attr-defined]
        yield client


def test_ops_is_off_without_a_token(make_settings, engine) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(sandbox=False), engine=engine)
    with TestClient(create_app(runtime)) as client:
        assert client.get("/ops").status_code == 404
        assert client.post("/ops/login", data={"token": ""}).status_code == 404


def test_missing_and_wrong_tokens_are_refused(ops_client) -> None:  # type: ignore[no-untyped-def]
    assert ops_client.get("/ops").status_code == 401
    assert ops_client.get("/ops", headers={"Authorization": "Bearer nope"}).status_code == 401
    wrong = ops_client.post("/ops/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "ops_session" not in wrong.cookies
    ops_client.cookies.set("ops_session", "ops.forged.signature")
    assert ops_client.get("/ops").status_code == 401


def test_bearer_token_shows_the_funnel(ops_client, sessions, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    with unit_of_work(sessions) as session:
        for index, status in enumerate(("open", "recovered")):
            session.add(RecoveryCase(
                payment_intent_id=f"pi_{index}", kind="payment_method_required", status=status,
                amount=1999, currency="jpy", opened_at=now, last_failure_at=now, updated_at=now,
                resolved_at=now + timedelta(hours=1) if status == "recovered" else None,
            ))
    page = ops_client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "Recovery funnel" in page.text
    assert "JPY" in page.text
    assert "<rect" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_login_sets_a_strict_cookie_and_replay_needs_csrf(ops_client) -> None:  # type: ignore[no-untyped-def]
    login = ops_client.post("/ops/login", data={"token": TOKEN}, follow_redirects=False)
    assert login.status_code == 303
    cookie_header = login.headers["set-cookie"].lower()
    assert "httponly" in cookie_header and "samesite=strict" in cookie_header
    assert ops_client.get("/ops").status_code == 200
    refused = ops_client.post("/ops/events/evt_1/replay", data={"csrf": "wrong"})
    assert refused.status_code == 403


def test_replay_button_reapplies_a_failed_event(ops_client, sessions, clock) -> None:  # type: ignore[no-untyped-def]
    import json
    import re

    from sqlalchemy import select

    from processor.db.models import StripeEvent

    now = clock()
    payload = json.dumps({
        "id": "evt_failed_1", "object": "event", "type": "payment_intent.succeeded",
        "created": int(now.timestamp()), "api_version": "2026-10-28.endive", "livemode": False,
        "data": {"object": {"id": "pi_replay", "object": "payment_intent", "status": "succeeded",
                            "amount": 1999, "currency": "usd", "customer": "cus_1"}},
    })
    with unit_of_work(sessions) as session:
        session.add(RecoveryCase(
            payment_intent_id="pi_replay", kind="payment_method_required", status="open",
            amount=1999, currency="usd", opened_at=now, last_failure_at=now, updated_at=now,
        ))
        session.add(StripeEvent(
            id="evt_failed_1", type="payment_intent.succeeded", object_id="pi_replay",
            stripe_created_at=now, received_at=now, last_received_at=now, status="failed",
            error="OperationalError: database is locked", delivery_count=1, attempt_count=1,
            source="webhook", payload=payload,
        ))
    ops_client.post("/ops/login", data={"token": TOKEN})
    page = ops_client.get("/ops")
    assert "evt_failed_1" in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    replayed = ops_client.post("/ops/events/evt_failed_1/replay", data={"csrf": csrf})
    assert replayed.status_code == 200
    assert "Replay of evt_failed_1: " in replayed.text
    with unit_of_work(sessions) as session:
        assert session.scalar(select(StripeEvent.status).where(StripeEvent.id == "evt_failed_1")) == "processed"
        assert session.scalar(select(RecoveryCase.status)) == "recovered"
    assert "No failed events." in ops_client.get("/ops").text


def test_with_real_keys_no_sandbox_route_exists(make_settings, engine) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        sandbox=False, stripe_secret_key="sk_test_real", stripe_publishable_key="pk_test_real",
        stripe_webhook_secrets=("whsec_real",), secret_key="r" * 40,
    )
    with TestClient(create_app(build_runtime(settings, engine=engine))) as client:
        for path in ("/sandbox", "/sandbox/mail/", "/sandbox/stripe/v3/stripe.js",
                     "/sandbox/stripe/v1/customers"):
            assert client.get(path).status_code == 404, path
        # 405 would mean a route still answers at that path: only 404 proves there is none.
        assert client.post("/sandbox/charges", data={"customer": "cus_1"}).status_code == 404
        config = client.get("/config").json()
    assert config["sandbox"] is False
    assert config["stripeJsUrl"] == "https://js.stripe.com/v3"


def test_sandbox_mode_marks_the_ops_page(make_settings, engine) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(ops_token=TOKEN), engine=engine)
    with TestClient(create_app(runtime)) as client:
        page = client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "Sandbox mode" in page.text


def test_repeated_wrong_tokens_lock_the_address_out(ops_client) -> None:  # type: ignore[no-untyped-def]
    wrong = [ops_client.post("/ops/login", data={"token": f"guess{n}"}).status_code for n in range(10)]
    assert wrong == [401] * 10
    locked = ops_client.post("/ops/login", data={"token": TOKEN}, follow_redirects=False)
    assert locked.status_code == 429
    assert "ops_session" not in locked.cookies
    assert int(locked.headers["retry-after"]) > 0
    bearer = ops_client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 429
    ops_client.runtime.clock.advance(minutes=31)
    assert ops_client.post("/ops/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303


def test_a_new_ops_token_signs_everyone_out(ops_client) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    login = ops_client.post("/ops/login", data={"token": TOKEN}, follow_redirects=False)
    assert login.status_code == 303
    assert ops_client.get("/ops").status_code == 200
    runtime = ops_client.runtime
    runtime.settings = replace(runtime.settings, ops_token="a-brand-new-token-0123456789abcdef")
    assert ops_client.get("/ops").status_code == 401


def test_an_oversized_login_form_is_refused(ops_client) -> None:  # type: ignore[no-untyped-def]
    form = {"content-type": "application/x-www-form-urlencoded"}
    declared = ops_client.post("/ops/login", content=b"token=" + b"x" * 5000, headers=form)
    assert declared.status_code == 413
    # Without a Content-Length the body is read only up to the limit.
    chunked = ops_client.post(
        "/ops/login", content=(b"x" * 1024 for _ in range(1000)), headers=form
    )
    assert chunked.status_code == 413


def test_a_due_backlog_past_the_bound_shows_as_the_bound_plus(ops_client, sessions, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(report, "DUE_NOW_COUNTED_UP_TO", 2)
    monkeypatch.setattr(ops_page, "DUE_NOW_COUNTED_UP_TO", 2)
    now = clock()
    with unit_of_work(sessions) as session:
        case = RecoveryCase(
            payment_intent_id="pi_backlog", kind="payment_method_required", status="open",
            amount=1000, currency="usd", opened_at=now, last_failure_at=now, updated_at=now,
        )
        session.add(case)
        session.flush()
        session.add_all([
            Notification(
                case_id=case.id, kind="initial", sequence=n, dedup_key=f"backlog:{n}",
                status="pending", attempts=0, next_attempt_at=now - timedelta(minutes=1),
                created_at=now, updated_at=now,
            )
            for n in range(4)
        ])
    page = ops_client.get("/ops", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "<td>pending</td><td>initial</td><td>4</td><td>2+</td>" in page.text
