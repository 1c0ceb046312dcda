"""Starlette application factory: routes, middleware and lifespan, assembled from a Runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from processor.runtime import Runtime
from processor.web import checkout, errors, health, metrics, pages, webhooks
from processor.web.security import SecurityHeaders


def create_app(runtime: Runtime) -> Starlette:
    """The web application for one process; every endpoint finds `runtime` on `app.state`."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    routes: list[BaseRoute] = [*health.routes(), *metrics.routes(runtime)]
    routes += [*checkout.routes(runtime.settings), *pages.routes()]
    routes += webhooks.routes()
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
    return app
