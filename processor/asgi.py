"""Entry point for ASGI servers: `uvicorn --factory processor.asgi:app_from_environment`."""

from __future__ import annotations

from starlette.applications import Starlette

from processor.app import create_app
from processor.config import load_settings
from processor.logs import configure_logging
from processor.runtime import build_runtime


def app_from_environment() -> Starlette:
    """Build settings and collaborators from the environment, then the app.

    Logging is configured here too: with several workers each one is a fresh process.
    """
    settings = load_settings()
    configure_logging(settings.log_format)
    return create_app(build_runtime(settings))
