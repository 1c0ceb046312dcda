"""What `POST /webhooks/stripe` hands a raw delivery to; re-exports the writer's `Receipt`.

`WebhookReceiver` is long-lived (one per app, closed with its lifespan): it owns the writer
threads that verify, parse and store deliveries in batches (see `writer`).
"""

from __future__ import annotations

from processor.runtime import Runtime
from processor.webhooks.writer import Receipt, WebhookWriter

__all__ = ["Receipt", "WebhookReceiver"]


class WebhookReceiver:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.writer = WebhookWriter(
            runtime.engine,
            settings.stripe_webhook_secrets,
            settings.webhook_tolerance_seconds,
            runtime.clock,
        )

    async def receive(self, body: bytes, signature_header: str | None) -> Receipt:
        """Verify and store one delivery off the event loop; raises `SignatureInvalid` or
        `PayloadInvalid` for one that must be refused (nothing is written for it)."""
        return await self.writer.store(body, signature_header)

    def close(self) -> None:
        self.writer.close()
