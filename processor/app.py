"""Starlette application factory: routes, middleware and lifespan, assembled from a Runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from processor.notifier.runner import BackgroundNotifier
from processor.runtime import Runtime
from processor.sandbox import Sandbox, create_sandbox_app
from processor.web import checkout, errors, health, metrics, ops, pages, webhooks
from processor.web.security import SecurityHeaders


def create_app(runtime: Runtime) -> Starlette:
    """The web application for one process; every endpoint finds `runtime` on `app.state`."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notifier = None
        if runtime.settings.run_notifier:
            notifier = BackgroundNotifier.for_runtime(runtime)
        if notifier is not None:
            notifier.start()
        try:
            yield
        finally:
            if notifier is not None:
                await run_in_threadpool(notifier.stop)
            if app.state.sandbox is not None:
                app.state.sandbox.close()

    routes: list[BaseRoute] = [*health.routes(), *metrics.routes(runtime)]
    routes += [*checkout.routes(runtime.settings), *pages.routes()]
    routes += webhooks.routes()
    routes += ops.routes()
    sandbox = _mount_sandbox(runtime, routes) if runtime.settings.sandbox else None
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SecurityHeaders, settings=runtime.settings, exempt_prefixes=["/sandbox/stripe/"]
            )
        ],
        exception_handlers=errors.EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.sandbox = sandbox
    return app


def _mount_sandbox(runtime: Runtime, routes: list[BaseRoute]) -> Sandbox:
    """Sandbox mode: the Stripe stand-in at /sandbox/stripe, delivering to our own receiver."""
    settings = runtime.settings
    sandbox_app = create_sandbox_app(
        secret_key=settings.stripe_secret_key,
        publishable_key=settings.stripe_publishable_key,
        clock=runtime.clock,
    )
    sandbox: Sandbox = sandbox_app.state.sandbox
    sandbox.add_webhook_endpoint(
        f"{settings.public_base_url}/webhooks/stripe", settings.stripe_webhook_secrets
    )
    routes.append(Mount("/sandbox/stripe", app=sandbox_app))
    return sandbox
