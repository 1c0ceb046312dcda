"""`POST /webhooks/stripe`: read the raw body within its limit, then verify and store off the loop
(in the receiver's writer thread, which commits deliveries in batches).

Status codes: 200 stored (new, duplicate or ignored type); 400 bad signature or not an event
(nothing written); 413 body over WEBHOOK_MAX_BODY_BYTES (the rest is never read); 500 the
handler raised (stored as failed, applied again on the next delivery); 503 the database is
unavailable (nothing written). Stripe retries everything but 2xx.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from processor.errors import PayloadInvalid, SignatureInvalid
from processor.runtime import Runtime
from processor.web.errors import error_body
from processor.webhooks.receiver import WebhookReceiver
from processor.webhooks.store import Outcome

STATUS_BY_OUTCOME = {
    Outcome.PROCESSED: 200,
    Outcome.IGNORED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.REAPPLIED: 200,
    Outcome.FAILED: 500,
    Outcome.UNAVAILABLE: 503,
}
RETRY_AFTER_SECONDS = "30"


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (without reading further) anything longer than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_stripe_webhook(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    metrics = runtime.metrics
    started = time.perf_counter()
    try:
        body = await read_body(request, runtime.settings.webhook_max_body_bytes)
    except BodyTooLarge:
        metrics.webhook_rejections.labels("too_large").inc()
        return JSONResponse(
            error_body("payload_too_large", "The body is larger than this endpoint accepts."),
            status_code=413,
            headers={"Connection": "close"},
        )
    receiver = _receiver(request)
    try:
        receipt = await asyncio.wrap_future(
            receiver.receive(body, request.headers.get("stripe-signature"))
        )
    except (SignatureInvalid, PayloadInvalid) as exc:
        metrics.webhook_rejections.labels(exc.code).inc()
        return JSONResponse(error_body(exc.code, str(exc)), status_code=400)
    outcome = receipt.outcome
    metrics.webhook_deliveries.labels(receipt.event_type, outcome.value).inc()
    metrics.webhook_latency.observe(time.perf_counter() - started)
    status = STATUS_BY_OUTCOME[outcome]
    if status == 200:
        return JSONResponse({"received": True, "outcome": outcome.value})
    if outcome is Outcome.FAILED:
        message = "The event was stored as failed and will be applied again on redelivery."
        return JSONResponse(error_body("handler_failed", message), status_code=500)
    return JSONResponse(
        error_body("database_unavailable", "Nothing was stored; deliver the event again."),
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _receiver(request: Request) -> WebhookReceiver:
    """The app's one receiver (and writer thread), made on the first delivery."""
    state = request.app.state
    receiver = getattr(state, "webhook_receiver", None)
    if receiver is None:
        receiver = state.webhook_receiver = WebhookReceiver(state.runtime)
    return receiver


def routes() -> list[Route]:
    return [Route("/webhooks/stripe", receive_stripe_webhook, methods=["POST"])]
