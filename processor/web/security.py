"""Browser-facing protections: the guard on JSON POST routes and the headers on every answer.

`JsonRequestGuard` wraps one route: a present `Origin` must be ours (403), the body must be
`application/json` (415) and small (413). `SecurityHeaders` adds a Content-Security-Policy
that lets Stripe.js (or the sandbox's stand-in) load and talk to its API, and nothing inline.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from processor.checkout.captcha import CAPTCHA_ORIGINS
from processor.config import Settings
from processor.errors import InvalidInput

DEFAULT_MAX_JSON_BYTES = 8 * 1024
HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Where real Stripe.js runs 3-D Secure challenges and reaches its API (Stripe's security guide).
_STRIPE_FRAME_ORIGINS = ("https://js.stripe.com", "https://hooks.stripe.com")
_STRIPE_CONNECT_ORIGINS = ("https://api.stripe.com",)


def bearer_matches(request: Request, expected: str | None) -> bool:
    """`Authorization: Bearer <expected>`, compared in constant time; never with no token set."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), (expected or "").encode())
    )


def monitoring_token(settings: Settings) -> str | None:
    """Who may read /metrics and the detailed /readyz: METRICS_TOKEN, else the ops token."""
    return settings.metrics_token or settings.ops_token


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in {("http", 80), ("https", 443)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class JsonRequestGuard:
    """ASGI middleware for one route taking JSON from our own pages.

    A cross-site form cannot send `application/json` without a CORS preflight, and the
    Origin check refuses what a browser marks as coming from elsewhere; together with
    SameSite=Lax cookies that is the CSRF defence. Safe methods pass through untouched.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_origin: str, max_body_bytes: int = DEFAULT_MAX_JSON_BYTES
    ) -> None:
        self.app = app
        self.allowed_origin = origin_of(allowed_origin)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not self._is_ours(origin):
            raise HTTPException(403, "This request did not come from our own page.")
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, "Send the request body as application/json.")
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise HTTPException(
                413, f"The request body is larger than {self.max_body_bytes} bytes."
            )
        await self.app(scope, self._limited(receive), send)

    def _is_ours(self, origin: str) -> bool:
        try:
            return origin_of(origin) == self.allowed_origin
        except ValueError:  # not even a URL (`http://[::1`, a port out of range)
            return False

    def _limited(self, receive: Receive) -> Receive:
        # A chunked body has no Content-Length: count what arrives and stop at the limit.
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(
                        413, f"The request body is larger than {self.max_body_bytes} bytes."
                    )
            return message

        return limited_receive


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body of a `json_route` request as a JSON object, or a 400 `malformed_json`."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("The request body is not valid JSON.", code="malformed_json") from exc
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.", code="malformed_json")
    return body


def json_route(path: str, endpoint: object, settings: Settings) -> Route:
    """A POST route that takes JSON from our own pages only."""
    guard = Middleware(JsonRequestGuard, allowed_origin=settings.public_base_url)
    return Route(path, endpoint, methods=["POST"], middleware=[guard])  # type: ignore[arg-type]


def content_security_policy(settings: Settings) -> str:
    """Our own files, Stripe.js from its origin (the sandbox's is ours), nothing inline."""
    stripe_js = origin_of(settings.stripe_js_url)
    connect = ["'self'", stripe_js]
    frame = [stripe_js]
    if not settings.sandbox:
        connect += _STRIPE_CONNECT_ORIGINS
        frame += _STRIPE_FRAME_ORIGINS
    if settings.stripe_api_base:
        connect.append(origin_of(settings.stripe_api_base))
    captcha_origins = CAPTCHA_ORIGINS.get(settings.captcha_provider or "", ())
    script = ["'self'", stripe_js, *captcha_origins]
    style = ["'self'", stripe_js, *captcha_origins]
    connect += captcha_origins
    frame += captcha_origins
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "style-src": style,
        "img-src": ["'self'", "data:", *([] if settings.sandbox else ["https://*.stripe.com"])],
        "connect-src": connect,
        "frame-src": frame,
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items()
    )


def security_headers(settings: Settings) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every answer carries, encoded for ASGI (the webhook endpoint sends them
    itself: deliveries skip the middleware)."""
    headers = {
        "content-security-policy": content_security_policy(settings),
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
    }
    if settings.public_base_url.startswith("https://"):
        # Browsers that once reached us over https never try plain http again for a year.
        headers["strict-transport-security"] = f"max-age={HSTS_MAX_AGE_SECONDS}"
    return tuple(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    )


class SecurityHeaders:
    """ASGI middleware: adds the CSP and a few standard headers unless a route set its own.

    Paths under `exempt_prefixes` are left alone: the sandbox mounted there stands in for
    Stripe's own servers, whose pages carry Stripe's policy, not ours.

    Every answer passes through here (each webhook delivery too), so the headers are encoded
    once and a response's header names are scanned once, rather than going through
    `MutableHeaders` per answer. Names are compared as sent: ASGI header names are lower-case.
    """

    def __init__(
        self, app: ASGIApp, *, settings: Settings, exempt_prefixes: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.raw_headers = security_headers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.with_defaults(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def with_defaults(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`headers` plus each of ours whose name the route did not send."""
        headers = list(headers)
        present = {name for name, _value in headers}
        headers += [header for header in self.raw_headers if header[0] not in present]
        return headers
