"""`GET /metrics` for Prometheus, including the outbox depth read at scrape time."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from processor.db.models import Notification
from processor.runtime import Runtime


async def metrics_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = await run_in_threadpool(generate_latest, runtime.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def routes(runtime: Runtime) -> list[Route]:
    def queue_depths() -> dict[str, int]:
        with runtime.sessions() as session:
            rows = session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            )
            return {status: count for status, count in rows}

    runtime.metrics.watch_queue(queue_depths)
    return [Route("/metrics", metrics_endpoint)]
