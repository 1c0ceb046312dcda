"""The ops views give the same numbers on SQLite and PostgreSQL (nearest-rank percentiles)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import RecoveryCase, StripeEvent

HOUR = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _event(event_id: str, *, lag: float, source: str = "webhook", status: str = "processed",
           deliveries: int = 1, event_type: str = "payment_intent.payment_failed") -> StripeEvent:
    received = HOUR + timedelta(minutes=20)
    return StripeEvent(
        id=event_id, type=event_type, livemode=False, stripe_created_at=received - timedelta(
            seconds=lag), received_at=received, last_received_at=received, status=status,
        delivery_count=deliveries, attempt_count=1, source=source,
    )


def _view(sessions: sessionmaker[Session], name: str) -> list[dict[str, Any]]:
    with sessions() as session:
        return [dict(row._mapping) for row in session.execute(text(f"SELECT * FROM {name}"))]


def test_webhook_health_counts_outcomes_and_lag_percentiles_per_hour_and_type(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        session.add_all(_event(f"evt_{n}", lag=n, deliveries=2 if n <= 3 else 1)
                        for n in range(1, 11))
        session.add(_event("evt_failed", lag=10, status="failed"))
        session.add(_event("evt_pulled", lag=86_400, source="reconcile"))
        session.add(_event("evt_other", lag=2, status="ignored", event_type="charge.succeeded"))
    rows = {row["type"]: row for row in _view(sessions, "ops_webhook_health")}
    health = rows["payment_intent.payment_failed"]
    assert str(health["hour"]).startswith("2026-11-30 09:00:00")
    assert (health["received"], health["duplicates"], health["failed"], health["ignored"],
            health["processed"], health["reconciled"]) == (12, 3, 1, 0, 11, 1)
    # Lags of webhook deliveries only: 1..10 s and 10 s; the reconciled event is left out.
    assert round(float(health["avg_lag_seconds"]), 3) == round(65 / 11, 3)
    assert round(float(health["p50_lag_seconds"]), 3) == 6.0
    assert round(float(health["p95_lag_seconds"]), 3) == 10.0
    assert round(float(health["max_lag_seconds"]), 3) == 10.0
    assert (rows["charge.succeeded"]["received"], rows["charge.succeeded"]["ignored"]) == (1, 1)


def _case(intent: str, status: str, seconds: int | None, amount: int = 1000,
          currency: str = "eur") -> RecoveryCase:
    opened = HOUR
    return RecoveryCase(
        payment_intent_id=intent, kind="payment_method_required", status=status,
        amount=amount, currency=currency, failure_count=1, opened_at=opened,
        last_failure_at=opened, updated_at=opened,
        resolved_at=opened + timedelta(seconds=seconds) if seconds is not None else None,
    )


def test_recovery_funnel_per_day_kind_and_currency(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add_all([
            _case("pi_1", "recovered", 60), _case("pi_2", "recovered", 120),
            _case("pi_3", "recovered", 600), _case("pi_4", "canceled", 30),
            _case("pi_5", "open", None), _case("pi_6", "recovered", 90, 500, "jpy"),
        ])
    rows = {row["currency"]: row for row in _view(sessions, "ops_recovery_funnel")}
    eur = rows["eur"]
    assert str(eur["day"]) == "2026-11-30"
    assert (eur["kind"], eur["opened"], eur["recovered"], eur["canceled"], eur["still_open"]) == (
        "payment_method_required", 5, 3, 1, 1,
    )
    assert float(eur["recovery_rate"]) == 0.6
    assert round(float(eur["avg_seconds_to_recover"])) == 260
    assert round(float(eur["p50_seconds_to_recover"])) == 120
    assert (eur["recovered_amount"], eur["opened_amount"]) == (3000, 5000)
    assert (rows["jpy"]["opened"], rows["jpy"]["recovered_amount"]) == (1, 500)
