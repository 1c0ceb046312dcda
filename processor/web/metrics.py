"""`GET /metrics` for Prometheus, including stored counts (outbox, charges) read at scrape time."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from processor.ops_report import status_counts
from processor.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    def stored_counts() -> dict[str, dict[str, int]]:
        with runtime.sessions() as session:
            return status_counts(session)

    registry = runtime.metrics.scrape_registry(
        stored_counts, runtime.settings.prometheus_multiproc_dir
    )

    async def metrics_endpoint(_request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics_endpoint)]

