"""Starlette application factory: routes, middleware and lifespan, assembled from a Runtime.

The sandbox (Stripe stand-in, mail sink, control page) is imported only in sandbox mode: a
production process never loads it, nor aiosmtpd.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.types import Receive, Scope, Send

from processor.checkout.method_details import MethodDetailsWorker
from processor.notifier.runner import BackgroundNotifier
from processor.notifier.smtp import SmtpMailer
from processor.runtime import Runtime
from processor.web import checkout, errors, health, metrics, ops, pages, recovery, webhooks
from processor.web.connections import BodyDeadline
from processor.web.security import SecurityHeaders

if TYPE_CHECKING:
    from processor.sandbox import Sandbox
    from processor.sandbox.mailbox import MailSink


class ServiceApp(Starlette):
    """The service's Starlette app, entered through `WebhookFastPath`: deliveries go straight
    to their endpoint, everything else through the middleware and the router."""

    def __init__(self, *, webhook_endpoint: webhooks.StripeWebhookEndpoint, **options: Any):
        super().__init__(**options)
        self.webhook_endpoint = webhook_endpoint
        self._entry = webhooks.WebhookFastPath(super().__call__, webhook_endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)


def create_app(runtime: Runtime) -> ServiceApp:
    """The web application for one process; every endpoint finds `runtime` on `app.state`."""
    webhook_endpoint = webhooks.StripeWebhookEndpoint(runtime)
    routes: list[BaseRoute] = [*webhooks.routes(webhook_endpoint)]
    routes += [*health.routes(), *metrics.routes(runtime)]
    routes += [*checkout.routes(runtime.settings), *pages.routes()]
    routes += recovery.routes(runtime.settings)
    routes += ops.routes()
    settings = runtime.settings
    sandbox = _mount_sandbox(runtime, routes) if settings.sandbox else None
    mail_sink = _mount_mail_sink(routes) if settings.sandbox and not settings.smtp_url else None
    if settings.sandbox:
        from processor.web import sandbox_console

        routes += sandbox_console.routes()
    app = ServiceApp(
        webhook_endpoint=webhook_endpoint,
        routes=routes,
        middleware=[
            Middleware(BodyDeadline, seconds=settings.body_read_timeout_seconds),
            Middleware(SecurityHeaders, settings=settings, exempt_prefixes=["/sandbox/stripe/"]),
        ],
        exception_handlers=errors.EXCEPTION_HANDLERS,
        lifespan=_background_work,
    )
    app.state.runtime = runtime
    app.state.webhook_endpoint = webhook_endpoint
    app.state.sandbox = sandbox
    app.state.mail_sink = mail_sink
    return app


@asynccontextmanager
async def _background_work(app: Starlette) -> AsyncIterator[None]:
    """What runs beside the requests: the mail sink, the notifier, the method-details worker.

    On the way out the webhook batch being written is answered before anything else stops.
    """
    runtime: Runtime = app.state.runtime
    mail_sink: MailSink | None = app.state.mail_sink
    notifier = None
    method_details = None
    sink_mailer = None
    if mail_sink is not None:
        await run_in_threadpool(mail_sink.start)
        sink_mailer = SmtpMailer.from_url(mail_sink.url)
    if runtime.settings.run_notifier:
        notifier = BackgroundNotifier.for_runtime(runtime, sink_mailer)
        if notifier is not None:  # None without an SMTP server: emails wait in the outbox
            notifier.start()
        # Fills in saved methods whose `payment_method.attached` never came (calls Stripe).
        method_details = MethodDetailsWorker(runtime)
        method_details.start()
    try:
        yield
    finally:
        await app.state.webhook_endpoint.aclose()
        if method_details is not None:
            await run_in_threadpool(method_details.stop)
        if notifier is not None:
            await run_in_threadpool(notifier.stop)
        if mail_sink is not None:
            await run_in_threadpool(mail_sink.stop)
        if app.state.sandbox is not None:
            app.state.sandbox.close()


def _mount_mail_sink(routes: list[BaseRoute]) -> MailSink:
    """Sandbox mode without SMTP_URL: keep outgoing mail on loopback, readable at /sandbox/mail."""
    from processor.sandbox.mailbox import MailSink, mail_routes

    sink = MailSink()
    routes.append(Mount("/sandbox/mail", routes=mail_routes(sink.mailbox)))
    return sink


def _mount_sandbox(runtime: Runtime, routes: list[BaseRoute]) -> Sandbox:
    """Sandbox mode: the Stripe stand-in at /sandbox/stripe, delivering to our own receiver."""
    from processor.sandbox import create_sandbox_app

    settings = runtime.settings
    versions = {"api_version": settings.sandbox_api_version} if settings.sandbox_api_version else {}
    sandbox_app = create_sandbox_app(
        secret_key=settings.stripe_secret_key,
        publishable_key=settings.stripe_publishable_key,
        clock=runtime.clock,
        **versions,
    )
    sandbox: Sandbox = sandbox_app.state.sandbox
    if settings.sandbox_sepa_settlement_seconds is not None:
        sandbox.set_sepa_settlement_delay(settings.sandbox_sepa_settlement_seconds)
    sandbox.add_webhook_endpoint(
        f"{settings.public_base_url}/webhooks/stripe", settings.stripe_webhook_secrets
    )
    routes.append(Mount("/sandbox/stripe", app=sandbox_app))
    return sandbox
