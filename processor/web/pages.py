"""Serves the static pages in checkout_page/: `GET /` and their scripts and styles under /assets.

The pages are plain files with no inline script or style, so the Content-Security-Policy that
`security.SecurityHeaders` adds can forbid everything inline.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from processor.resources import resource_path

PAGES_DIRECTORY = resource_path("checkout_page")
# The HTML names its assets without a version, so it must be revalidated on every load.
HTML_HEADERS = {"cache-control": "no-cache"}


async def checkout_page(_request: Request) -> FileResponse:
    """The save-a-method page."""
    return FileResponse(PAGES_DIRECTORY / "index.html", headers=HTML_HEADERS)


def routes() -> list[BaseRoute]:
    return [
        Route("/", checkout_page, methods=["GET"]),
        Mount("/assets", app=StaticFiles(directory=PAGES_DIRECTORY), name="assets"),
    ]
