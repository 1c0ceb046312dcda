"""The app answers its probes."""

from __future__ import annotations

from starlette.testclient import TestClient

from processor.app import create_app
from processor.runtime import build_runtime


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
    runtime.metrics.charges.labels(outcome="succeeded").inc()
    with TestClient(create_app(runtime)) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert 'processor_charges_total{outcome="succeeded"} 1.0' in answer.text
    assert "processor_notification_queue_depth" in answer.text
