"""`/ops`: the recovery funnel, webhook health, the outbox and failed events with a replay button.

Off unless OPS_TOKEN is set. A person signs in with the token and gets a signed, HttpOnly,
SameSite=Strict cookie scoped to /ops, bound to the token (a new token signs everyone out);
scripts may send `Authorization: Bearer <token>`. Wrong tokens count per address: after too
many the address is locked out for a while (OPS_SIGN_IN_LIMIT).
Replay is a POST carrying a CSRF token derived from the cookie, so another site cannot
trigger it even where SameSite is not honoured.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from itsdangerous import BadSignature, TimestampSigner
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from processor.errors import ProcessorError, RateLimited
from processor.ops.report import DUE_NOW_COUNTED_UP_TO, OpsReport, read_report
from processor.runtime import Runtime
from processor.web import limits
from processor.web.funnel_chart import funnel_bars
from processor.webhooks.replay import replay_event

COOKIE_NAME = "ops_session"
COOKIE_MAX_AGE_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
LOCKED_OUT = "Too many wrong tokens from your address. Try again later."
_HERE = Path(__file__).resolve().parent
_TEMPLATES = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"])
)
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _signer(runtime: Runtime) -> TimestampSigner:
    return TimestampSigner(runtime.settings.secret_key, salt="ops-session")


def _token_fingerprint(runtime: Runtime) -> str:
    """What the cookie carries: it stops working when OPS_TOKEN changes."""
    token = runtime.settings.ops_token or ""
    return hashlib.sha256(f"ops-session:{token}".encode()).hexdigest()


def _session_cookie(request: Request) -> str | None:
    runtime: Runtime = request.app.state.runtime
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        signed_for = _signer(runtime).unsign(cookie, max_age=COOKIE_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not hmac.compare_digest(signed_for, _token_fingerprint(runtime).encode()):
        return None
    return cookie


async def _token_accepted(request: Request, candidate: str) -> bool:
    """Compare a presented token; failures count per address and lock it out when too many."""
    runtime: Runtime = request.app.state.runtime
    address = limits.client_address(request)
    limit = runtime.settings.ops_sign_in_limit
    scope = limits.FAILED_OPS_SIGN_INS_PER_ADDRESS
    await limits.refuse_when_exhausted(request, scope, address, limit, LOCKED_OUT)
    expected = runtime.settings.ops_token or ""
    if expected and hmac.compare_digest(candidate.encode(), expected.encode()):
        return True
    await limits.count_failure(request, scope, address, limit)
    return False


async def _bearer_ok(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and await _token_accepted(request, token.strip())


def _csrf_token(runtime: Runtime, cookie: str) -> str:
    key = hashlib.sha256(f"ops-csrf:{runtime.settings.secret_key}".encode()).digest()
    return hmac.new(key, cookie.encode(), hashlib.sha256).hexdigest()


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status_code, headers={"Content-Security-Policy": _CSP})


async def _form(request: Request) -> dict[str, str]:
    """The small urlencoded form; a larger body is refused before it is read (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise HTTPException(413, f"The form is larger than {MAX_FORM_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"The form is larger than {MAX_FORM_BYTES} bytes.")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _disabled(request: Request) -> bool:
    return not request.app.state.runtime.settings.ops_token


async def dashboard(request: Request) -> Response:
    if _disabled(request):
        return Response(status_code=404)
    cookie = _session_cookie(request)
    if cookie is None and not await _bearer_ok(request):
        return _render("ops_login.html", status_code=401, error=None)
    runtime: Runtime = request.app.state.runtime
    report: OpsReport = await run_in_threadpool(_read_report, runtime)
    return _render(
        "ops.html",
        report=report,
        bars=funnel_bars(report.funnel),
        csrf=_csrf_token(runtime, cookie) if cookie else "",
        merchant=runtime.settings.merchant_name,
        sandbox=runtime.settings.sandbox,
        notice=request.query_params.get("notice"),
        due_now_up_to=DUE_NOW_COUNTED_UP_TO,
    )


def _read_report(runtime: Runtime) -> OpsReport:
    return read_report(runtime.sessions, now=runtime.clock())


async def login(request: Request) -> Response:
    if _disabled(request):
        return Response(status_code=404)
    runtime: Runtime = request.app.state.runtime
    form = await _form(request)
    try:
        accepted = await _token_accepted(request, form.get("token", ""))
    except RateLimited as exc:
        refused = _render("ops_login.html", status_code=429, error=LOCKED_OUT)
        refused.headers["retry-after"] = str(exc.retry_after_seconds)
        return refused
    if not accepted:
        return _render("ops_login.html", status_code=401, error="That token is not valid.")
    response = RedirectResponse("/ops", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        _signer(runtime).sign(_token_fingerprint(runtime)).decode(),
        max_age=COOKIE_MAX_AGE_SECONDS,
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=runtime.settings.secure_cookies,
    )
    return response


async def replay(request: Request) -> Response:
    if _disabled(request):
        return Response(status_code=404)
    runtime: Runtime = request.app.state.runtime
    cookie = _session_cookie(request)
    if cookie is not None:
        form = await _form(request)
        if not hmac.compare_digest(form.get("csrf", ""), _csrf_token(runtime, cookie)):
            return Response("Missing or wrong CSRF token.", status_code=403)
    elif not await _bearer_ok(request):
        return Response("Sign in first.", status_code=401)
    event_id = request.path_params["event_id"]
    outcome = await run_in_threadpool(_replay_event, runtime, event_id)
    notice = urlencode({"notice": f"Replay of {event_id}: {outcome}"})
    return RedirectResponse(f"/ops?{notice}", status_code=303)


def _replay_event(runtime: Runtime, event_id: str) -> str:
    try:
        replayed = replay_event(runtime, event_id)
    except ProcessorError as exc:
        return f"not replayed: {exc}"
    detail = f" ({replayed.error})" if replayed.error else ""
    return f"{replayed.outcome.value}{detail}"


def routes() -> list[BaseRoute]:
    return [
        Route("/ops", dashboard, methods=["GET"]),
        Route("/ops/login", login, methods=["POST"]),
        Route("/ops/events/{event_id}/replay", replay, methods=["POST"]),
        Mount("/ops/static", app=StaticFiles(directory=_HERE / "static"), name="ops_static"),
    ]
