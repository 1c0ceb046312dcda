"""`WebhookFastPath`: deliveries go straight to the endpoint, everything else to the app."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from processor.web.webhooks import WebhookFastPath
from tests.fixtures.loops import run_on_own_loop


def handled_by(**scope: Any) -> str:
    """Who answered a request with this scope: "endpoint" or "app"."""
    seen: list[str] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append("endpoint")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append("app")

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    request = {"type": "http", "method": "POST", "path": "/webhooks/stripe", **scope}
    middleware = WebhookFastPath(app, endpoint)  # type: ignore[arg-type]
    run_on_own_loop(middleware(request, receive, send))
    [who] = seen
    return who


def test_a_delivery_goes_straight_to_the_endpoint() -> None:
    assert handled_by() == "endpoint"


def test_behind_a_proxy_prefix_too() -> None:
    assert handled_by(path="/pay/webhooks/stripe", root_path="/pay") == "endpoint"


@pytest.mark.parametrize(
    "scope",
    [
        {"method": "GET"},  # the app's route answers 405
        {"path": "/webhooks/stripe/"},
        {"path": "/webhooks/stripe/extra"},
        {"path": "/customers"},
        {"type": "websocket"},
    ],
)
def test_anything_else_goes_to_the_app(scope: Any) -> None:
    assert handled_by(**scope) == "app"
