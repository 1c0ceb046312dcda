"""`GET /metrics` for Prometheus, including stored counts (outbox, charges) read at scrape time
from the `status_counts` summary (processor.ops.counts).

Scrapers send `Authorization: Bearer <METRICS_TOKEN>` (or the ops token); only the sandbox
without either token answers anyone. Outside it, no token means no /metrics.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from processor.ops.counts import compact, status_counts
from processor.runtime import Runtime
from processor.web.security import bearer_matches, monitoring_token


def routes(runtime: Runtime) -> list[Route]:
    def stored_counts() -> dict[str, dict[str, int]]:
        with runtime.sessions() as session:
            # Folding the counts' rows here keeps every later scrape's sum small.
            if compact(session):
                session.commit()
            return status_counts(session)

    registry = runtime.metrics.scrape_registry(
        stored_counts, runtime.settings.prometheus_multiproc_dir
    )

    async def metrics_endpoint(request: Request) -> Response:
        token = monitoring_token(runtime.settings)
        if token is None and not runtime.settings.sandbox:
            return Response("Set METRICS_TOKEN to read /metrics.\n", status_code=404)
        if token is not None and not bearer_matches(request, token):
            return Response(
                "Send Authorization: Bearer <METRICS_TOKEN>.\n",
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics_endpoint)]

