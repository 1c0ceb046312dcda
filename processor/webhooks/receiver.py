"""What `POST /webhooks/stripe` hands a raw delivery to; re-exports the writer's `Receipt`.

`WebhookReceiver` is long-lived (one per app, closed with its lifespan): it owns the writer
that verifies deliveries and stores them in batches, in a child process of the web worker
(`writer_process`) or, with `WEBHOOK_WRITER=thread`, in threads of its own (`writer`).
"""

from __future__ import annotations

from sqlalchemy import Engine

from processor.runtime import Runtime
from processor.webhooks.writer import Receipt, WebhookWriter, writer_threads_for
from processor.webhooks.writer_process import ChildProcessWriter

__all__ = ["Receipt", "WebhookReceiver"]


class WebhookReceiver:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.writer: ChildProcessWriter | WebhookWriter
        if settings.webhook_writer == "process" and not _in_memory(runtime.engine):
            self.writer = ChildProcessWriter(
                runtime.engine.url.render_as_string(hide_password=False),
                settings.stripe_webhook_secrets,
                settings.webhook_tolerance_seconds,
                channels=writer_threads_for(runtime.engine),
                clock=runtime.clock,
                log_format=settings.log_format,
            )
        else:
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


def _in_memory(engine: Engine) -> bool:
    """A database only this process can see: a child process would open another, empty one."""
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
