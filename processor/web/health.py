"""Liveness and readiness probes.

`/healthz` is open and touches nothing. `/readyz` answers anyone with its status code; the
problems behind a 503 are shown only to a caller with the monitoring token (or in the
sandbox). The SMTP server is probed at most once per `SMTP_PROBE_INTERVAL_SECONDS`, however
often the probe is called.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Awaitable, Callable
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
from processor.web.security import bearer_matches, monitoring_token

SMTP_PROBE_TIMEOUT_SECONDS = 2.0
SMTP_PROBE_INTERVAL_SECONDS = 30.0


class SmtpProbe:
    """The last SMTP verdict, refreshed when older than the interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._problems: list[str] = []

    def problems(self, settings: Settings) -> list[str]:
        if settings.sandbox or not settings.run_notifier:
            return []
        with self._lock:
            now = time.monotonic()
            if self._checked_at is None or now - self._checked_at >= SMTP_PROBE_INTERVAL_SECONDS:
                self._problems = _smtp_problems(settings)
                self._checked_at = now
            return list(self._problems)


async def healthz(_request: Request) -> JSONResponse:
    """The process is up and serving requests."""
    return JSONResponse({"status": "ok"})


def _readyz(probe: SmtpProbe) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def readyz(request: Request) -> JSONResponse:
        """The database answers, its schema is at the latest migration, and mail can go out."""
        runtime: Runtime = request.app.state.runtime
        problems = await run_in_threadpool(_readiness_problems, runtime, probe)
        if not problems:
            return JSONResponse({"status": "ready"})
        body: dict[str, object] = {"status": "unavailable"}
        token = monitoring_token(runtime.settings)
        if bearer_matches(request, token) or (token is None and runtime.settings.sandbox):
            body["problems"] = problems
        return JSONResponse(body, status_code=503)

    return readyz


def _readiness_problems(runtime: Runtime, probe: SmtpProbe) -> list[str]:
    return _database_problems(runtime) + probe.problems(runtime.settings)


def _smtp_problems(settings: Settings) -> list[str]:
    """Outside sandbox mode a process that runs the notifier must reach its SMTP server."""
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
    return [Route("/healthz", healthz), Route("/readyz", _readyz(SmtpProbe()))]
