"""`create_sandbox_app`: the Starlette application that stands in for Stripe's test mode.

Routes: `/v1/…` (Stripe's API), `/v3/stripe.js` and `/v3/*.css` (the Stripe.js stand-in),
`/_sandbox/…` (controls and the 3-D Secure page). Works at its own root or mounted under a
prefix; `app.state.sandbox` is the `Sandbox` control object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from processor.config import SANDBOX_PUBLISHABLE_KEY, SANDBOX_SECRET_KEY
from processor.sandbox import bank_redirects, challenge, http_control
from processor.sandbox.api import api_endpoint
from processor.sandbox.control import Sandbox
from processor.sandbox.store import Clock
from processor.sandbox.versions import PINNED_API_VERSION

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


async def stripe_js_asset(request: Request) -> Response:
    """`/v3/stripe.js` and `/v3/<name>.css` from the static folder; 404 until they exist."""
    name = request.path_params["name"]
    suffix = Path(name).suffix
    candidate = STATIC / name
    if (
        "/" in name
        or name.startswith(".")
        or suffix not in CONTENT_TYPES
        or not candidate.is_file()
    ):
        return PlainTextResponse("Not found", 404)
    return FileResponse(
        candidate, media_type=CONTENT_TYPES[suffix], headers={"Cache-Control": "no-cache"}
    )


async def stripe_js_root(request: Request) -> Response:
    """`https://js.stripe.com/v3` without a file name also serves the script."""
    request.path_params["name"] = "stripe.js"
    return await stripe_js_asset(request)


def create_sandbox_app(
    *,
    secret_key: str = SANDBOX_SECRET_KEY,
    publishable_key: str = SANDBOX_PUBLISHABLE_KEY,
    clock: Clock | None = None,
    api_version: str = PINNED_API_VERSION,
) -> Starlette:
    """A fresh sandbox (its own state) as an ASGI app; `api_version` is the account's default.
    Live keys and malformed versions raise `ValueError`."""
    sandbox = Sandbox(
        secret_key=secret_key, publishable_key=publishable_key, clock=clock, api_version=api_version
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.close()

    routes: list[BaseRoute] = [
        Route("/v1/{path:path}", api_endpoint, methods=["GET", "POST", "DELETE"]),
        Route("/v3", stripe_js_root, methods=["GET"]),
        Route("/v3/{name}", stripe_js_asset, methods=["GET"]),
        *challenge.routes(),
        *bank_redirects.routes(),
        *http_control.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
