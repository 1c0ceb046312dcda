"""The `/v1` endpoint: knobs, authentication, parameters, idempotency, dispatch, answer.

Every answer carries `Request-Id`; errors are Stripe's bodies. Resource handlers run
synchronously under the store lock (they are in-memory and fast), so the event loop only
waits for them, never for webhook delivery.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from processor.sandbox import expand, idempotency, routes, versions
from processor.sandbox.context import Call
from processor.sandbox.control import Sandbox
from processor.sandbox.errors import SandboxError, authentication, invalid_request
from processor.sandbox.ids import request_id as new_request_id
from processor.sandbox.knobs import Knobs
from processor.sandbox.routes import ApiRoute
from processor.sandbox.wire import Params, as_list, decode_form, decode_json, decode_query

NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)
PUBLISHABLE_MESSAGE = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)
RATE_LIMIT_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
    "requests."
)
# How long the `answer_after_webhooks` knob holds an answer at most: a stuck delivery must not
# hang the client forever.
ANSWER_HOLD_LIMIT = 30.0


def encode(body: Any) -> bytes:
    """Compact JSON: the C encoder is several times faster than an indented dump."""
    return json.dumps(body, separators=(",", ":")).encode()


def _json(status: int, body: Any, headers: dict[str, str]) -> Response:
    return Response(encode(body), status, headers, media_type="application/json")


def _masked(key: str) -> str:
    return f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "****"


def _presented_key(request: Request, params: Params) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            return base64.b64decode(value).decode().split(":", 1)[0] or None
        except ValueError:
            return None
    key = params.get("key")
    return key if isinstance(key, str) and key else None


def key_kind(sandbox: Sandbox, key: str | None, access: str) -> str:
    if key is None:
        raise authentication(NO_KEY_MESSAGE)
    if "_live_" in key:
        raise authentication("The sandbox refuses live-mode API keys. Use a test key.")
    if key == sandbox.secret_key:
        return "secret"
    if key == sandbox.publishable_key:
        if access == "secret":
            raise authentication(PUBLISHABLE_MESSAGE)
        return "publishable"
    raise authentication(f"Invalid API Key provided: {_masked(key)}")


async def read_params(request: Request) -> Params:
    if request.method in ("GET", "DELETE"):
        return decode_query(request.scope.get("query_string", b""))
    body = await request.body()
    if "application/json" in request.headers.get("content-type", ""):
        params = decode_json(body)
    else:
        params = decode_form(body)
    query = request.scope.get("query_string", b"")
    return {**decode_query(query), **params} if query else params


def _base_url(request: Request) -> str:
    """Where the sandbox itself is served, its mount path included: Starlette's `base_url`
    stops at the outermost app, and the bank and 3-D Secure pages live under the mount."""
    app_root = request.scope.get("app_root_path", "")
    root = request.scope.get("root_path", "")
    mount = root[len(app_root) :] if root.startswith(app_root) else ""
    return str(request.base_url).rstrip("/") + mount


async def api_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    request_id = new_request_id()
    version = request.headers.get("stripe-version") or sandbox.api_version
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    try:
        versions.parse(version)
        return await _handle(request, sandbox, request_id, headers)
    except SandboxError as error:
        return _json(error.status, error.body(request_id), {**headers, **error.headers})


async def _handle(
    request: Request, sandbox: Sandbox, request_id: str, headers: dict[str, str]
) -> Response:
    knobs = sandbox.knobs
    inject = _admit(knobs)
    path = "/v1/" + request.path_params["path"]
    method = request.method
    params = await read_params(request)
    route, path_args = _route(method, path)
    kind = key_kind(sandbox, _presented_key(request, params), route.access)
    params.pop("key", None)
    key = request.headers.get("idempotency-key") if method == "POST" else None
    scope = f"{kind}:{sandbox.secret_key if kind == 'secret' else sandbox.publishable_key}"
    if key:
        replay = sandbox.idempotency.begin(
            scope,
            key,
            f"{method} {path}",
            idempotency.fingerprint(params),
            sandbox.store.now(),
            request_id,
        )
        if replay is not None:
            if inject:
                raise _injected_error(knobs.error_should_retry)
            return Response(
                replay.body,
                replay.status,
                idempotency.replay_headers(replay, key, request_id),
                media_type="application/json",
            )
        headers = {**headers, **idempotency.answer_headers(key, request_id)}
    if knobs.latency > 0:
        await asyncio.sleep(knobs.latency)
    call = sandbox.new_call(
        params,
        kind,
        api_version=headers["Stripe-Version"],
        request_id=request_id,
        idempotency_key=key,
        base_url=_base_url(request),
        path_args=path_args,
    )
    status, payload, headers = _execute(sandbox, route, call, headers, scope, key, request_id)
    if knobs.answer_after_webhooks:
        await asyncio.to_thread(sandbox.webhooks.wait_until_idle, ANSWER_HOLD_LIMIT)
    if inject:
        raise _injected_error(knobs.error_should_retry)
    return Response(payload, status, headers, media_type="application/json")


def _admit(knobs: Knobs) -> bool:
    """The rate-limit and error knobs before anything runs; True: fail after running."""
    if not knobs.admit():
        raise SandboxError(
            429,
            "invalid_request_error",
            RATE_LIMIT_MESSAGE,
            code="rate_limit",
            headers={"Stripe-Rate-Limited-Reason": "global-rate"},
        )
    inject = bool(knobs.inject_error())
    if inject and not knobs.error_after_execution:
        raise _injected_error(knobs.error_should_retry)
    return inject


def _route(method: str, path: str) -> tuple[ApiRoute, dict[str, str]]:
    found = routes.match(method, path)
    if found is None:
        raise invalid_request(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            status=404,
        )
    return found


def _execute(
    sandbox: Sandbox,
    route: ApiRoute,
    call: Call,
    headers: dict[str, str],
    scope: str,
    key: str | None,
    request_id: str,
) -> tuple[int, bytes, dict[str, str]]:
    """Run the handler, expand its answer, and keep it under the idempotency key."""
    writes_before = sandbox.store.writes
    try:
        body = sandbox.execute(route.handler, call)
        expansions = as_list(call.params, "expand")
        if expansions:
            with sandbox.store.lock:
                body = expand.apply(sandbox.store, body, expansions)
        status, payload = 200, encode(body)
    except SandboxError as error:
        status, payload = error.status, encode(error.body(request_id))
        headers = {**headers, **error.headers}
        if key and sandbox.store.writes == writes_before:
            # Rejected before anything ran: nothing is kept, the key may be retried.
            sandbox.idempotency.abandon(scope, key)
            key = None
    except BaseException:
        if key:
            sandbox.idempotency.abandon(scope, key)
        raise
    if key:
        sandbox.idempotency.finish(scope, key, status, payload, headers)
    return status, payload, headers


def _injected_error(should_retry: bool | None) -> SandboxError:
    headers = {}
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return SandboxError(
        500,
        "api_error",
        "An unknown error occurred (injected by the sandbox).",
        headers=headers,
    )
