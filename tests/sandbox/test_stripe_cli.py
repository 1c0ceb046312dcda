"""Stripe's own CLI drives the sandbox: each `stripe trigger` fixture in this product's domain
runs against it, at an older API version, and the event it stands for is in the Events API.

The CLI comes from npm (`.ci/run` installs it into .ci/node and exports STRIPE_CLI, which makes
this test required); without either, the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.sandbox import SandboxHandle

LOCAL_CLI = Path(__file__).resolve().parents[2] / ".ci" / "node" / "node_modules" / ".bin" / "stripe"
API_VERSION = "2025-10-29.clover"
TRIGGERS = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment_intent.created",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "setup_intent.created",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
    "setup_intent.requires_action",
    "setup_intent.canceled",
    "charge.succeeded",
    "charge.failed",
    "charge.captured",
    "charge.refunded",
    "charge.dispute.created",
)


def _stripe_cli() -> Path:
    """The CLI named by STRIPE_CLI (required then), else the local npm install, else skip."""
    named = os.environ.get("STRIPE_CLI")
    if named:
        path = Path(named)
        assert path.exists(), f"STRIPE_CLI={named} does not exist"
        return path
    if not LOCAL_CLI.exists():
        pytest.skip("Stripe's CLI is not installed (npm install --prefix .ci/node)")
    return LOCAL_CLI


@pytest.fixture(scope="module")
def stripe_cli() -> Path:
    return _stripe_cli()


@pytest.mark.parametrize("event_type", TRIGGERS)
def test_stripe_trigger_runs_against_the_sandbox(
    sandbox: SandboxHandle, stripe_cli: Path, tmp_path: Path, event_type: str
) -> None:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "STRIPE_CLI_TELEMETRY_OPTOUT": "1",
    }
    command = [
        str(stripe_cli),
        "trigger",
        event_type,
        "--api-base",
        sandbox.url,
        "--api-key",
        sandbox.secret_key,
        "--api-version",
        API_VERSION,
    ]

    run = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=60, check=False
    )

    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Trigger succeeded" in output, output
    events = sandbox.client.v1.events.list({"type": event_type}).data
    assert events, f"no {event_type} event after the trigger"
    assert all(event.api_version == sandbox.control.api_version for event in events)
