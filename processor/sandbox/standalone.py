"""`processor sandbox`: the stand-in on its own port, forwarding signed webhooks to a URL
and printing each delivery, as `stripe listen --forward-to` does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from processor.sandbox.app import create_sandbox_app
from processor.sandbox.control import Sandbox
from processor.sandbox.versions import PINNED_API_VERSION
from processor.sandbox.webhooks import Delivery


def describe(delivery: Delivery) -> str:
    outcome = str(delivery.status_code) if delivery.status_code is not None else delivery.error
    retry = f" (attempt {delivery.attempt})" if delivery.attempt > 1 else ""
    return f"--> {delivery.type} [{delivery.event_id}] <-- [{outcome}] POST {delivery.url}{retry}"


def run(
    *,
    host: str,
    port: int,
    secret_key: str,
    publishable_key: str,
    forward_to: str | None,
    webhook_secrets: Sequence[str],
    api_version: str | None = None,
    out: TextIO = sys.stderr,
) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    import uvicorn

    app = create_sandbox_app(
        secret_key=secret_key,
        publishable_key=publishable_key,
        api_version=api_version or PINNED_API_VERSION,
    )
    sandbox: Sandbox = app.state.sandbox
    address = f"http://{host}:{port}"
    print(f"Stripe sandbox listening on {address}", file=out)
    print(f"  STRIPE_API_BASE={address}", file=out)
    print(f"  default API version: {app.state.sandbox.api_version}", file=out)
    print(f"  Stripe.js stand-in: {address}/v3/stripe.js", file=out)
    if forward_to:
        sandbox.add_webhook_endpoint(forward_to, webhook_secrets)
        sandbox.webhooks.on_delivery = lambda d: print(describe(d), file=out, flush=True)
        print(f"  forwarding webhooks to {forward_to}", file=out)
        print(f"  Ready! Your webhook signing secret is {webhook_secrets[0]}", file=out, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
