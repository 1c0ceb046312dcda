"""`/_sandbox/…`: the `Sandbox` controls as JSON over HTTP, for tests in another process.

Every route takes the sandbox's secret key (`Authorization: Bearer sk_test_…`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from processor.sandbox.authentication import OUTCOMES
from processor.sandbox.control import Sandbox
from processor.sandbox.errors import SandboxError


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    header = request.headers.get("authorization", "")
    if header != f"Bearer {sandbox.secret_key}":
        raise SandboxError(401, "invalid_request_error", "The control API needs the secret key.")
    return sandbox


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise SandboxError(400, "invalid_request_error", "Send a JSON object.")
    return data


# action(sandbox, body, request) -> JSON-able, or None for {"ok": true}
Action = Callable[[Sandbox, dict[str, Any], Request], Any]


def _endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
    """Wrap `action(sandbox, body, request) -> JSON-able` with auth and error bodies."""

    async def endpoint(request: Request) -> Response:
        try:
            sandbox = _sandbox(request)
            body = await _body(request)
            result = await run_in_threadpool(action, sandbox, body, request)
        except SandboxError as error:
            return JSONResponse(error.body(), error.status)
        except (ValueError, KeyError, TypeError, TimeoutError) as error:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": str(error)}}, 400
            )
        return JSONResponse(result if result is not None else {"ok": True})

    return endpoint


def _add_endpoint(sandbox: Sandbox, body: dict[str, Any], _r: Request) -> dict[str, Any]:
    endpoint_id = sandbox.add_webhook_endpoint(
        body["url"], body["secrets"], body.get("enabled_events", ["*"])
    )
    return {"id": endpoint_id}


def _remove_endpoint(sandbox: Sandbox, _b: dict[str, Any], request: Request) -> None:
    sandbox.remove_webhook_endpoint(request.path_params["id"])


def _wait(sandbox: Sandbox, body: dict[str, Any], _r: Request) -> dict[str, Any]:
    return {"ok": sandbox.wait_for_deliveries(float(body.get("timeout", 5.0)))}


def _authenticate(sandbox: Sandbox, body: dict[str, Any], _r: Request) -> dict[str, Any]:
    outcome = body.get("outcome", bool(body.get("success", True)))
    if isinstance(outcome, bool):
        return sandbox.authenticate(body["intent"], outcome)
    if outcome not in OUTCOMES:  # a typo must not pass for a failed challenge
        raise SandboxError(400, "invalid_request_error", "outcome must be complete or fail")
    return sandbox.authenticate(body["intent"], OUTCOMES[outcome])


def _settle(sandbox: Sandbox, body: dict[str, Any], _r: Request) -> Any:
    if body.get("payment_intent"):
        return sandbox.settle(body["payment_intent"])
    return {"settled": sandbox.settle_processing()}


ACTIONS: dict[tuple[str, str], Action] = {
    ("POST", "/reset"): lambda s, b, r: s.reset(
        keep_webhook_endpoints=bool(b.get("keep_webhook_endpoints", False))
    ),
    ("POST", "/webhook_endpoints"): _add_endpoint,
    ("DELETE", "/webhook_endpoints/{id}"): _remove_endpoint,
    ("GET", "/deliveries"): lambda s, b, r: {"data": [d.as_dict() for d in s.deliveries]},
    ("POST", "/wait_for_deliveries"): _wait,
    ("POST", "/webhooks/pause"): lambda s, b, r: s.pause_webhooks(),
    ("POST", "/webhooks/resume"): lambda s, b, r: s.resume_webhooks(),
    ("POST", "/webhooks/chaos"): lambda s, b, r: s.set_webhook_chaos(
        float(b.get("duplicate_share", 0.0)), bool(b.get("shuffle", False))
    ),
    ("POST", "/webhooks/retry_schedule"): lambda s, b, r: s.set_webhook_retry_schedule(b["delays"]),
    ("POST", "/webhooks/timeout"): lambda s, b, r: s.set_webhook_timeout(b["seconds"]),
    ("POST", "/latency"): lambda s, b, r: s.set_latency(float(b.get("seconds", 0))),
    ("POST", "/rate_limit"): lambda s, b, r: s.set_rate_limit(b.get("requests_per_second")),
    ("POST", "/errors"): lambda s, b, r: s.inject_errors(
        float(b.get("share", 0)),
        b.get("should_retry", True),
        after_execution=bool(b.get("after_execution", False)),
        seed=b.get("seed"),
    ),
    ("POST", "/answers/after_webhooks"): lambda s, b, r: s.set_answer_after_webhooks(
        bool(b.get("enabled", False))
    ),
    ("POST", "/sepa_settlement_delay"): lambda s, b, r: s.set_sepa_settlement_delay(
        b.get("seconds")
    ),
    ("POST", "/clock/advance"): lambda s, b, r: {
        "now": s.advance_clock(float(b["seconds"])).isoformat()
    },
    ("GET", "/charge_attempts"): lambda s, b, r: {"data": [a.as_dict() for a in s.charge_attempts]},
    ("GET", "/events"): lambda s, b, r: {"data": s.events},
    ("POST", "/authenticate"): _authenticate,
    ("POST", "/settle"): _settle,
}


def routes() -> list[BaseRoute]:
    return [
        Route(f"/_sandbox{path}", _endpoint(action), methods=[method])
        for (method, path), action in ACTIONS.items()
    ]
