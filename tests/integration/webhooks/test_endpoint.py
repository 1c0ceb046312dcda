"""`POST /webhooks/stripe` over loopback: status codes, what gets written, and what does not."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from processor.db.models import Notification, RecoveryCase, StripeEvent
from processor.webhooks.batcher import APPLICATION_NAME, THREAD_NAME_PREFIX
from processor.webhooks.envelope import Event
from processor.webhooks.reducers import REDUCERS, on_payment_intent_payment_failed
from tests.fixtures.app import LiveApp
from tests.fixtures.events import (
    body_of,
    decline,
    payment_intent,
    signature,
    stripe_event,
)

NEW = "whsec_endpoint_new_0123456789"
OLD = "whsec_endpoint_old_9876543210"
TOLERANCE = 300


@pytest.fixture
def app(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app(stripe_webhook_secrets=(NEW, OLD), webhook_max_body_bytes=64 * 1024)


def failed_payment(event_id: str = "evt_http") -> str:
    intent = payment_intent("pi_http", status="requires_payment_method",
                            last_payment_error=decline("card_declined", "insufficient_funds"))
    return body_of(stripe_event("payment_intent.payment_failed", intent, event_id=event_id))


def post(app: LiveApp, body: str | bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return httpx.post(f"{app.url}/webhooks/stripe", content=body, headers=headers, timeout=10)


def stored_events(app: LiveApp) -> int:
    with app.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(StripeEvent)) or 0)


def test_only_post_is_accepted_and_answers_carry_the_security_headers(app: LiveApp) -> None:
    assert httpx.get(f"{app.url}/webhooks/stripe", timeout=10).status_code == 405
    body = failed_payment("evt_headers")
    answer = post(app, body, signature(body, NEW))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_signed_event_is_stored_and_acknowledged(app: LiveApp) -> None:
    body = failed_payment()
    answer = post(app, body, signature(body, NEW))
    assert answer.status_code == 200
    assert answer.json() == {"received": True, "outcome": "processed"}
    with app.runtime.sessions() as session:
        row = _stored_event(session, "evt_http")
        assert (row.status, row.secret_index) == ("processed", 0)
        assert session.scalars(select(RecoveryCase)).one().payment_intent_id == "pi_http"


def _batch_connections(app: LiveApp) -> int:
    """The batcher's PostgreSQL connections to this database, as the server lists them."""
    with app.runtime.engine.connect() as connection:
        return int(connection.execute(
            text("SELECT count(*) FROM pg_stat_activity"
                 " WHERE application_name = :name AND datname = current_database()"),
            {"name": APPLICATION_NAME},
        ).scalar_one())


def test_stopping_the_app_answers_the_batch_in_flight_and_lets_its_resources_go(
    app: LiveApp,
) -> None:
    """SQLite batches run on a thread, which stops; PostgreSQL batches on the event loop, over
    connections of their own, which close."""
    before = set(threading.enumerate())
    on_postgresql = app.runtime.engine.dialect.name == "postgresql"
    others = _batch_connections(app) if on_postgresql else 0  # of apps that are not this one
    body = failed_payment("evt_before_shutdown")
    assert post(app, body, signature(body, NEW)).status_code == 200
    batch_threads = [
        thread
        for thread in set(threading.enumerate()) - before
        if thread.name.startswith(THREAD_NAME_PREFIX)
    ]
    if on_postgresql:
        assert not batch_threads
        assert _batch_connections(app) > others
    else:
        assert batch_threads
    app.stop()
    for thread in batch_threads:
        thread.join(timeout=10)
    assert not [thread.name for thread in batch_threads if thread.is_alive()]
    if on_postgresql:
        assert _batch_connections(app) == others


def test_the_old_secret_still_works_during_rotation_and_is_recorded(app: LiveApp) -> None:
    body = failed_payment()
    assert post(app, body, signature(body, OLD)).status_code == 200
    with app.runtime.sessions() as session:
        assert _stored_event(session, "evt_http").secret_index == 1


def test_a_duplicate_is_acknowledged_and_counted(app: LiveApp) -> None:
    body = failed_payment()
    post(app, body, signature(body, NEW))
    answer = post(app, body, signature(body, NEW))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "duplicate")


def _v0_only(body: str) -> str:
    stamp = int(time.time())
    return f"t={stamp},v0={signature(body, NEW, stamp).split('v1=')[1]}"


@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        (lambda body: signature(body, "whsec_someone_else"), "no signature matches"),
        (_v0_only, "no v1 signature"),
        (lambda body: signature(body, NEW, int(time.time()) - TOLERANCE - 10), "too old"),
        (lambda body: signature(body, NEW, int(time.time()) + TOLERANCE + 10), "in the future"),
        (lambda body: None, "missing"),
        (lambda body: "t=nope", "malformed"),
        (lambda body: signature(body.replace("2000", "1"), NEW), "no signature matches"),
    ],
    ids=["wrong-secret", "v0-only", "stale", "future", "missing", "garbled", "tampered"],
)
def test_bad_signatures_get_400_and_write_nothing(
    app: LiveApp, make_header: Callable[[str], str | None], reason: str
) -> None:
    body = failed_payment()
    answer = post(app, body, make_header(body))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "signature_invalid"
    assert reason in answer.json()["error"]["message"]
    assert stored_events(app) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00garbage",
        body_of({"object": "payment_intent", "id": "pi_1"}).encode(),
        body_of({**stripe_event("x.y", {}), "id": "notevt"}).encode(),
        body_of({**stripe_event("x.y", {}), "data": {}}).encode(),
    ],
    ids=["not-json", "not-utf8", "not-an-event", "bad-id", "no-data-object"],
)
def test_bodies_that_are_not_events_get_400_and_write_nothing(app: LiveApp, body: bytes) -> None:
    text = body.decode("utf-8", errors="replace")
    answer = post(app, body, signature(text, NEW))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] in {"payload_invalid", "signature_invalid"}
    assert stored_events(app) == 0


def test_an_oversized_body_gets_413(app: LiveApp) -> None:
    body = "x" * (64 * 1024 + 1)
    assert post(app, body, signature(body, NEW)).status_code == 413

    def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 8192

    answer = httpx.post(f"{app.url}/webhooks/stripe", content=chunks(), timeout=10)
    assert answer.status_code == 413
    assert stored_events(app) == 0


def test_an_oversized_body_is_refused_before_it_is_sent(app: LiveApp) -> None:
    # Declare 10 MiB, send only the headers: the answer must come without waiting for the body.
    port = int(app.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
        )
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


class FailsUntilFixed:
    """Reduces the event as the real reducer does, but raises until the test fixes it."""

    def __init__(self) -> None:
        self.fixed = False

    def __call__(self, event: Event) -> tuple[Any, ...]:
        changes = on_payment_intent_payment_failed(event)
        if not self.fixed:
            raise RuntimeError(self.message)
        return changes

    message = "renderer crashed"


def test_a_failing_handler_gets_500_then_the_redelivery_applies_it(
    app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = FailsUntilFixed()
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", handler)
    body = failed_payment()
    first = post(app, body, signature(body, NEW))
    assert first.status_code == 500
    assert first.json()["error"]["code"] == "handler_failed"
    with app.runtime.sessions() as session:
        row = _stored_event(session, "evt_http")
        assert (row.status, row.error) == ("failed", "RuntimeError: renderer crashed")
        assert session.scalars(select(RecoveryCase)).all() == []
    handler.fixed = True
    second = post(app, body, signature(body, NEW))
    assert (second.status_code, second.json()["outcome"]) == (200, "reapplied")
    with app.runtime.sessions() as session:
        assert _stored_event(session, "evt_http").status == "processed"
        assert len(session.scalars(select(Notification)).all()) == 1


def test_a_failing_event_in_a_batch_does_not_fail_the_others(
    app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REDUCERS, "payment_intent.payment_failed", FailsUntilFixed())
    bodies = [failed_payment("evt_bad")] + [
        body_of(stripe_event("payment_intent.succeeded", payment_intent(f"pi_ok{n}")))
        for n in range(15)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda body: post(app, body, signature(body, NEW)).status_code,
                                 bodies))
    assert statuses == [500] + [200] * 15
    with app.runtime.sessions() as session:
        stored = {e.id: e.status for e in session.scalars(select(StripeEvent))}
    assert stored.pop("evt_bad") == "failed"
    assert set(stored.values()) == {"processed"} and len(stored) == 15


def test_an_unreachable_database_gets_503(live_app: Callable[..., LiveApp]) -> None:
    app = live_app(
        stripe_webhook_secrets=(NEW,),
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
    )
    body = failed_payment()
    answer = post(app, body, signature(body, NEW))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.headers["Retry-After"]


def test_ten_concurrent_posts_of_one_event_store_it_once(app: LiveApp) -> None:
    body = failed_payment("evt_concurrent")
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def deliver() -> None:
        header = signature(body, NEW)
        barrier.wait(timeout=10)
        statuses.append(post(app, body, header).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 10
    with app.runtime.sessions() as session:
        assert _stored_event(session, "evt_concurrent").delivery_count == 10
        case = session.scalars(select(RecoveryCase)).one()
        assert case.failure_count == 1
        assert len(session.scalars(select(Notification)).all()) == 1


def test_outcomes_and_rejections_are_counted_in_metrics(app: LiveApp) -> None:
    body = failed_payment()
    post(app, body, signature(body, NEW))
    post(app, body, signature(body, NEW))
    post(app, body, None)
    text = httpx.get(f"{app.url}/metrics", timeout=10).text
    assert ('processor_webhook_deliveries_total{outcome="processed",'
            'type="payment_intent.payment_failed"} 1.0') in text
    assert ('processor_webhook_deliveries_total{outcome="duplicate",'
            'type="payment_intent.payment_failed"} 1.0') in text
    assert 'processor_webhook_rejections_total{reason="signature_invalid"} 1.0' in text


def test_an_event_the_database_cannot_hold_is_refused_alone(app: LiveApp) -> None:
    """PostgreSQL text cannot hold NUL: that event gets 400, its neighbours are stored."""
    unstorable = body_of(stripe_event(
        "payment_intent.payment_failed",
        payment_intent("pi_nul\u0000", status="requires_payment_method",
                       last_payment_error=decline("card_declined", "insufficient_funds")),
        event_id="evt_nul\u0000",
    ))
    assert "\\u0000" in unstorable
    bodies = [unstorable] + [
        body_of(stripe_event("payment_intent.succeeded", payment_intent(f"pi_fine{n}"),
                             event_id=f"evt_fine{n:02d}"))
        for n in range(23)
    ]
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda body: post(app, body, signature(body, NEW)), bodies))
    assert [answer.status_code for answer in answers] == [400] + [200] * 23
    assert answers[0].json()["error"]["code"] == "payload_invalid"
    with app.runtime.sessions() as session:
        stored = set(session.scalars(select(StripeEvent.id)))
    assert stored == {f"evt_fine{n:02d}" for n in range(23)}


def _stored_event(session: Session, event_id: str) -> StripeEvent:
    return session.scalars(select(StripeEvent).filter_by(id=event_id)).one()
