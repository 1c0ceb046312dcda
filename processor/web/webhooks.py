"""`POST /webhooks/stripe`: read the body within its limit, verify and parse it on the event
loop, then wait for the batch that stores and applies it (processor.webhooks.batcher).

Status codes: 200 stored (new, duplicate or ignored type); 400 bad signature, not an event, or
an event the database cannot hold (nothing written); 413 body over WEBHOOK_MAX_BODY_BYTES (the
rest is never read); 500 the event could not be applied (stored as failed, applied again on
the next delivery); 503 the database is unavailable (nothing written). Stripe retries
everything but 2xx.

The endpoint is a plain ASGI app rather than a Starlette request handler: every delivery
passes through it, and it needs only two headers, the body and pre-encoded answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from processor.errors import PayloadInvalid, ProcessorError, SignatureInvalid
from processor.runtime import Runtime
from processor.web.connections import send_request_timeout
from processor.web.errors import error_body
from processor.web.security import security_headers
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.batcher import WebhookBatcher, default_batches_in_flight
from processor.webhooks.envelope import parse_event
from processor.webhooks.verify import check_signature

WEBHOOK_PATH = "/webhooks/stripe"
RETRY_AFTER_SECONDS = "30"
# The 2xx answers, encoded once: {"received": true, "outcome": ...}.
OK_BODIES = {
    outcome: orjson.dumps({"received": True, "outcome": outcome.value})
    for outcome in Outcome
    if outcome.acknowledged
}
UNSTORABLE_MESSAGE = "The event holds data the database cannot store."
Headers = Sequence[tuple[bytes, bytes]]
_CLOSE: Headers = ((b"connection", b"close"),)  # the rest of a refused body is never read
_RETRY_LATER: Headers = ((b"retry-after", RETRY_AFTER_SECONDS.encode()),)


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_body(
    receive: Receive, declared_length: int | None, limit: int, deadline: float
) -> bytes:
    """The raw body, refusing (without reading further) anything longer than `limit` bytes,
    and raising `TimeoutError` if it is not all here by `deadline` (the event loop's time)."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout_at(deadline):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def delivery_headers(scope: Scope) -> tuple[int | None, str | None]:
    """Content-Length (when it is a number) and Stripe-Signature, in one pass over the headers."""
    declared: int | None = None
    signature: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"stripe-signature" and signature is None:
            signature = value.decode("latin-1")
    return declared, signature


def verified_delivery(runtime: Runtime, body: bytes, signature: str | None) -> Delivery:
    """The delivery, or `SignatureInvalid` / `PayloadInvalid` saying why it is refused."""
    settings = runtime.settings
    payload, secret_index = check_signature(
        body,
        signature,
        settings.stripe_webhook_secrets,
        settings.webhook_tolerance_seconds,
        runtime.clock().timestamp(),
    )
    return Delivery(parse_event(payload), secret_index)


class StripeWebhookEndpoint:
    """The ASGI app behind the route (a class: Starlette wraps plain functions as handlers).

    Deliveries reach it straight from the server (`WebhookFastPath`), so it does itself what
    the middleware does for other routes: the body's deadline (408) and the security headers.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.batcher = WebhookBatcher(
            runtime.engine,
            runtime.clock,
            batches_in_flight=default_batches_in_flight(
                runtime.engine, runtime.settings.web_concurrency
            ),
        )
        self.headers = [(b"content-type", b"application/json"), *security_headers(runtime.settings)]

    async def aclose(self) -> None:
        """Let the batcher's thread or connections go (the app is shutting down)."""
        await self.batcher.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        settings = runtime.settings
        started = time.perf_counter()
        declared, signature = delivery_headers(scope)
        deadline = asyncio.get_running_loop().time() + settings.body_read_timeout_seconds
        try:
            body = await read_body(receive, declared, settings.webhook_max_body_bytes, deadline)
        except ClientGone:
            return  # nobody is left to answer; nothing was stored
        except TimeoutError:
            return await send_request_timeout(send)
        except BodyTooLarge:
            runtime.metrics.webhook_rejections.labels("too_large").inc()
            message = "The body is larger than this endpoint accepts."
            return await self._send_error(send, 413, "payload_too_large", message, _CLOSE)
        try:
            delivery = verified_delivery(runtime, body, signature)
        except (SignatureInvalid, PayloadInvalid) as exc:
            return await self._refuse(send, exc)
        outcome = await self.batcher.submit(delivery)
        if outcome is Outcome.UNSTORABLE:
            return await self._refuse(send, PayloadInvalid(UNSTORABLE_MESSAGE))
        runtime.metrics.webhook_deliveries.labels(delivery.event.type, outcome.value).inc()
        runtime.metrics.webhook_latency.observe(time.perf_counter() - started)
        ok_body = OK_BODIES.get(outcome)
        if ok_body is not None:
            return await self._send(send, 200, ok_body)
        if outcome is Outcome.FAILED:
            message = "The event was stored as failed and will be applied again on redelivery."
            return await self._send_error(send, 500, "handler_failed", message)
        message = "Nothing was stored; deliver the event again."
        await self._send_error(send, 503, "database_unavailable", message, _RETRY_LATER)

    async def _refuse(self, send: Send, exc: ProcessorError) -> None:
        self.runtime.metrics.webhook_rejections.labels(exc.code).inc()
        await self._send_error(send, 400, exc.code, str(exc))

    async def _send_error(
        self, send: Send, status: int, code: str, message: str, extra: Headers = ()
    ) -> None:
        await self._send(send, status, orjson.dumps(error_body(code, message)), extra)

    async def _send(self, send: Send, status: int, body: bytes, extra: Headers = ()) -> None:
        headers = [*self.headers, (b"content-length", b"%d" % len(body)), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def routes(endpoint: StripeWebhookEndpoint) -> list[Route]:
    # An ASGI app as the endpoint: Starlette still routes it and answers 405 to other methods.
    return [Route(WEBHOOK_PATH, endpoint, methods=["POST"])]


class WebhookFastPath:
    """The app's entry: hands `POST /webhooks/stripe` straight to the endpoint.

    Nearly every request the service gets is a delivery, and the event loop is where the
    receiver spends most of its CPU. Each layer of middleware wraps `receive` or `send` again
    for every request, and the endpoint needs none of them: it answers its own refusals,
    keeps its own body deadline and sends the security headers itself; an unexpected error
    reaches the server, which logs it and answers 500. Anything else goes on to the app,
    whose route for the same path answers 405 to other methods.
    """

    def __init__(self, app: ASGIApp, endpoint: StripeWebhookEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _is_webhook_path(scope):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_webhook_path(scope: Scope) -> bool:
    """The path as the router matches it: without the `root_path` a proxy mounted us under."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    return path == WEBHOOK_PATH
