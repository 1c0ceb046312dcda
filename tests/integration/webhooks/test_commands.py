"""`processor replay` and `processor reconcile` as separate processes, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import RecoveryCase, StripeEvent
from processor.webhooks.apply import Outcome
from processor.webhooks.envelope import Event
from processor.webhooks.reducers import REDUCERS
from tests.fixtures.events import decline, payment_intent, stripe_event
from tests.fixtures.sandbox import SandboxHandle, cli_environment
from tests.integration.webhooks.conftest import Deliver

pytestmark = pytest.mark.slow
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(engine: Engine, sandbox: SandboxHandle, database_url: str, tmp_path: Path) -> Run:
    env = cli_environment(database_url, sandbox)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "processor", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )

    return run


def _broken(event: Event) -> tuple[Any, ...]:
    raise RuntimeError("handler bug, since fixed")


def test_replay_failed_applies_the_stored_failures_then_finds_nothing(
    run: Run, deliver: Deliver, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    intent = payment_intent("pi_cli", status="requires_payment_method",
                            last_payment_error=decline("expired_card"))
    document = stripe_event("payment_intent.payment_failed", intent, event_id="evt_cli")
    with monkeypatch.context() as patch:
        patch.setitem(REDUCERS, "payment_intent.payment_failed", _broken)
        assert deliver(document) is Outcome.FAILED

    done = run("replay", "--failed")
    assert done.returncode == 0, done.stderr
    assert "evt_cli payment_intent.payment_failed: reapplied" in done.stdout
    with sessions() as session:
        assert _stored_event(session, "evt_cli").status == "processed"
        assert session.scalars(select(RecoveryCase)).one().kind == "payment_method_required"

    again = run("replay", "--failed")
    assert (again.returncode, again.stdout.strip()) == (0, "processor replay: 0 event(s)")
    one = run("replay", "evt_cli")
    assert "evt_cli payment_intent.payment_failed: duplicate" in one.stdout


def test_replay_explains_bad_requests(run: Run) -> None:
    unknown = run("replay", "evt_unknown")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1, "processor replay: no stored event evt_unknown",
    )
    assert run("replay").returncode == 2
    assert run("replay", "evt_x", "--failed").returncode == 2


def test_reconcile_pulls_what_was_missed_and_warns_about_retention(
    run: Run, sandbox: SandboxHandle, sessions: sessionmaker[Session]
) -> None:
    customer, method = sandbox.saved_card("cli@example.com", "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError):
        sandbox.client.v1.payment_intents.create({
            "amount": 990, "currency": "usd", "customer": customer, "payment_method": method,
            "off_session": True, "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        })
    done = run("reconcile", "--since", "2d")
    assert done.returncode == 0, done.stderr
    assert "already stored" in done.stdout and "processed" in done.stdout
    with sessions() as session:
        assert session.scalars(select(RecoveryCase)).one().kind == "authentication_required"

    far = run("reconcile", "--since", "45d")
    assert far.returncode == 0, far.stderr
    assert "looking back 30 days instead of 45" in far.stderr
    assert "recorded: none" in far.stdout
    assert run("reconcile", "--since", "soon").returncode == 2


def _stored_event(session: Session, event_id: str) -> StripeEvent:
    return session.scalars(select(StripeEvent).filter_by(id=event_id)).one()
