"""`SecurityHeaders` on raw ASGI messages: what it adds, what it leaves to the route."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from processor.config import Settings
from processor.web.security import SecurityHeaders, content_security_policy
from tests.fixtures.loops import run_on_own_loop

SETTINGS = Settings()
OURS = {
    b"content-security-policy": content_security_policy(SETTINGS).encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
}


def answer_headers(
    path: str, start: Message, settings: Settings = SETTINGS
) -> list[tuple[bytes, bytes]]:
    """The headers a route answering with `start` sends through the middleware."""
    sent: list[Message] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = SecurityHeaders(route, settings=settings, exempt_prefixes=["/sandbox/stripe/"])
    scope = {"type": "http", "path": path, "headers": []}
    run_on_own_loop(middleware(scope, receive, send))
    assert sent[1]["body"] == b"{}"
    return list(sent[0].get("headers", []))


def test_every_answer_gets_our_headers_after_the_routes_own() -> None:
    own = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    headers = answer_headers("/webhooks/stripe", {
        "type": "http.response.start", "status": 200, "headers": own,
    })
    assert headers == own + list(OURS.items())


def test_a_header_the_route_set_is_kept_as_the_route_set_it() -> None:
    own = [(b"referrer-policy", b"no-referrer"), (b"content-security-policy", b"default-src 'none'")]
    headers = answer_headers("/recover/x", {
        "type": "http.response.start", "status": 200, "headers": tuple(own),
    })
    assert headers[:2] == own
    assert dict(headers)[b"x-frame-options"] == b"DENY"
    assert [name for name, _value in headers].count(b"referrer-policy") == 1
    assert len(headers) == 4


def test_an_answer_without_headers_gets_ours() -> None:
    headers = answer_headers("/healthz", {"type": "http.response.start", "status": 204})
    assert dict(headers) == OURS


def test_the_stripe_stand_in_is_left_alone() -> None:
    own = [(b"content-type", b"text/html")]
    start = {"type": "http.response.start", "status": 200, "headers": own}
    assert answer_headers("/sandbox/stripe/v1/js", start) == own


def test_https_deployments_answer_with_hsts_and_http_ones_do_not() -> None:
    secure = Settings(sandbox=False, public_base_url="https://pay.example.com")
    start: Message = {"type": "http.response.start", "status": 204}
    assert dict(answer_headers("/", dict(start), secure))[b"strict-transport-security"] == (
        b"max-age=31536000"
    )
    assert b"strict-transport-security" not in dict(answer_headers("/", dict(start)))
