"""Liveness and readiness probes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from processor.db.migrate import is_at_head
from processor.runtime import Runtime


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
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if not is_at_head(runtime.engine):
            return ["database schema is not at the latest migration; run `processor migrate`"]
    except SQLAlchemyError as exc:
        return [f"database unreachable: {type(exc).__name__}"]
    return []


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz)]
