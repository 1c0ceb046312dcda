"""The app answers its probes."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import replace

from starlette.testclient import TestClient

from processor.app import create_app
from processor.runtime import build_runtime

MONITORING_TOKEN = "m" * 32
MONITORING = {"Authorization": f"Bearer {MONITORING_TOKEN}"}


def test_healthz_and_readyz_on_a_migrated_database(make_settings, migrated_engine) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(), engine=migrated_engine)
    with TestClient(create_app(runtime)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text


def test_readyz_fails_when_schema_is_behind(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from processor.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    runtime = build_runtime(make_settings(database_url=str(engine.url)), engine=engine)
    with TestClient(create_app(runtime)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert "migrate" in answer.json()["problems"][0]


def test_metrics_expose_counters_and_queue_depth(make_settings, migrated_engine) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(), engine=migrated_engine)
    from processor.db.engine import unit_of_work
    from processor.db.models import Charge

    now = runtime.clock()
    with unit_of_work(runtime.sessions) as session:
        session.add(Charge(
            reference="r1", idempotency_key="charge:r1", customer_id="cus_1", amount=500,
            currency="usd", status="succeeded", attempt_count=1, created_at=now, updated_at=now,
        ))
    runtime.metrics.webhook_deliveries.labels("payment_intent.succeeded", "processed").inc()
    try:
        with TestClient(create_app(runtime)) as client:
            answer = client.get("/metrics")
    finally:
        with unit_of_work(runtime.sessions) as session:
            session.query(Charge).delete()
    assert answer.status_code == 200
    assert 'processor_charges{status="succeeded"} 1.0' in answer.text
    assert "processor_notification_queue_depth" in answer.text
    assert "processor_charge_retries" in answer.text
    assert "processor_webhook_deliveries_total" in answer.text


def test_readyz_reports_an_unreachable_smtp_server_outside_sandbox_mode(make_settings, migrated_engine) -> None:  # type: ignore[no-untyped-def]
    from tests.fixtures.servers import free_port

    settings = make_settings(
        sandbox=False, run_notifier=True, smtp_url=f"smtp://127.0.0.1:{free_port()}",
        metrics_token=MONITORING_TOKEN,
    )
    runtime = build_runtime(settings, engine=migrated_engine)
    app = create_app(runtime)
    runtime.settings = replace(settings, run_notifier=False)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200  # this process sends no mail
        runtime.settings = settings
        anonymous = client.get("/readyz")
        answer = client.get("/readyz", headers=MONITORING)
    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "unavailable"})
    assert answer.status_code == 503
    assert answer.json()["problems"][0].startswith("SMTP unreachable")


def test_readyz_probes_smtp_once_per_interval_however_often_it_is_asked(make_settings, migrated_engine) -> None:  # type: ignore[no-untyped-def]
    connections: list[object] = []

    class CountingServer(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            connections.append(self.client_address)
            self.request.sendall(b"554 no service\r\n")

    with socketserver.TCPServer(("127.0.0.1", 0), CountingServer) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        settings = make_settings(sandbox=False, run_notifier=True, smtp_url=f"smtp://127.0.0.1:{port}")
        runtime = build_runtime(settings, engine=migrated_engine)
        runtime.settings = replace(settings, run_notifier=False)  # no notifier thread here
        app = create_app(runtime)
        runtime.settings = settings
        with TestClient(app) as client:
            answers = [client.get("/readyz").status_code for _ in range(20)]
        server.shutdown()
    assert answers == [503] * 20
    assert len(connections) == 1


def test_metrics_need_the_monitoring_token_outside_the_sandbox(make_settings, migrated_engine) -> None:  # type: ignore[no-untyped-def]
    unset = build_runtime(make_settings(sandbox=False), engine=migrated_engine)
    with TestClient(create_app(unset)) as client:
        assert client.get("/metrics").status_code == 404
    guarded = build_runtime(
        make_settings(sandbox=False, ops_token="o" * 32), engine=migrated_engine
    )
    with TestClient(create_app(guarded)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {'o' * 32}"})
        assert answer.status_code == 200
        assert "processor_webhook_deliveries_total" in answer.text
        assert client.get("/healthz").status_code == 200


def test_readyz_fails_when_the_database_is_gone(make_settings) -> None:  # type: ignore[no-untyped-def]
    from processor.db.engine import make_engine

    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    runtime = build_runtime(make_settings(), engine=engine)
    with TestClient(create_app(runtime)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert "database unreachable" in answer.json()["problems"][0]


def test_metrics_count_a_delivered_webhook(make_settings, engine) -> None:  # type: ignore[no-untyped-def]
    import json
    import time

    import stripe

    settings = make_settings(
        sandbox=False, stripe_webhook_secrets=("whsec_metrics",), metrics_token=MONITORING_TOKEN
    )
    runtime = build_runtime(settings, engine=engine)
    payload = json.dumps({
        "id": "evt_metrics_1", "object": "event", "type": "customer.created",
        "created": int(time.time()), "api_version": "2026-10-28.endive", "livemode": False,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    })
    header = stripe.WebhookSignature.generate_signature_header(payload, "whsec_metrics")
    with TestClient(create_app(runtime)) as client:
        delivered = client.post(
            "/webhooks/stripe", content=payload,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
        assert delivered.status_code == 200, delivered.text
        refused = client.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": "t=1,v1=00"})
        assert refused.status_code == 400
        text = client.get("/metrics", headers=MONITORING).text
    assert 'processor_webhook_deliveries_total{outcome="ignored",type="customer.created"} 1.0' in text
    assert "processor_webhook_rejections_total{" in text
    assert "processor_webhook_processing_seconds_count 1.0" in text
