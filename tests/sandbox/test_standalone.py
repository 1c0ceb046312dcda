"""`processor sandbox` as its own process, forwarding signed webhooks like `stripe listen`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import stripe

from tests.fixtures.sandbox import WebhookReceiver
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def standalone(webhook_receiver: WebhookReceiver) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "processor",
            "sandbox",
            "--port",
            str(port),
            "--forward-to",
            webhook_receiver.url,
            "--webhook-secret",
            "whsec_one",
            "--webhook-secret",
            "whsec_two",
        ],
        env={**env, "SANDBOX": "true"},
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/v3/stripe.js", timeout=1)
            break
        except httpx.TransportError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "processor sandbox did not start"
            time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_forwards_signed_events(
    standalone: tuple[str, subprocess.Popen[str]], webhook_receiver: WebhookReceiver
) -> None:
    url, process = standalone
    client = stripe.StripeClient("sk_test_sandbox", base_addresses={"api": url})

    customer = client.v1.customers.create({"email": "cli@example.com"})

    deadline = time.monotonic() + 10
    while not webhook_receiver.received:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [received] = webhook_receiver.received
    for secret in ("whsec_one", "whsec_two"):
        event = stripe.Webhook.construct_event(received.body, received.signature, secret)
        assert event.data.object.id == customer.id
    process.terminate()
    _, errors = process.communicate(timeout=10)
    assert "Ready! Your webhook signing secret is whsec_one" in errors
    assert f"--> customer.created [{event.id}] <-- [200] POST {webhook_receiver.url}" in errors


def test_refuses_live_keys() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "processor", "sandbox", "--port", str(free_port())],
        env={
            **env,
            "SANDBOX": "true",
            "STRIPE_SECRET_KEY": "sk_test_x",
            "STRIPE_PUBLISHABLE_KEY": "pk_live_x",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode != 0
    assert "live" in done.stderr
