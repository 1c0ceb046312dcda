"""Liveness and readiness probes."""

from __future__ import annotations

import smtplib
from contextlib import suppress
from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from processor.config import Settings
from processor.db.migrate import is_at_head
from processor.errors import DeliveryError
from processor.notifier.smtp import SmtpConfig, SmtpMailer
from processor.runtime import Runtime

SMTP_PROBE_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> JSONResponse:
    """The process is up and serving requests."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    runtime: Runtime = request.app.state.runtime
    problems = await run_in_threadpool(_readiness_problems, runtime)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


def _readiness_problems(runtime: Runtime) -> list[str]:
    return _database_problems(runtime) + _smtp_problems(runtime.settings)


def _smtp_problems(settings: Settings) -> list[str]:
    """Outside sandbox mode a process that runs the notifier must reach its SMTP server."""
    if settings.sandbox or not settings.run_notifier:
        return []
    if not settings.smtp_url:
        return ["SMTP_URL is not set but this process runs the notifier"]
    try:
        config = replace(SmtpConfig.from_url(settings.smtp_url), timeout=SMTP_PROBE_TIMEOUT_SECONDS)
        client = SmtpMailer(config).connect()
    except (ValueError, DeliveryError) as exc:
        return [f"SMTP unreachable: {exc}"]
    with suppress(OSError, smtplib.SMTPException):
        client.quit()
    return []


def _database_problems(runtime: Runtime) -> list[str]:
    # Reading the current revision is itself the round trip that proves the database answers.
    try:
        at_head = is_at_head(runtime.engine)
    except SQLAlchemyError as exc:
        return [f"database unreachable: {type(exc).__name__}"]
    if not at_head:
        return ["database schema is not at the latest migration; run `processor migrate`"]
    return []


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz)]
