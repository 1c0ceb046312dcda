"""`/ops`: the recovery funnel, webhook health, the outbox and failed events with a replay button.

Off unless OPS_TOKEN is set. A person signs in with the token and gets a signed, HttpOnly,
SameSite=Strict cookie scoped to /ops; scripts may send `Authorization: Bearer <token>`.
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
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from processor.db.engine import unit_of_work
from processor.errors import ProcessorError
from processor.ops_report import OpsReport, build_report
from processor.runtime import Runtime
from processor.web.funnel_chart import funnel_bars
from processor.webhooks.replay import replay_event

COOKIE_NAME = "ops_session"
COOKIE_MAX_AGE_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096
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


def _token_matches(runtime: Runtime, candidate: str) -> bool:
    expected = runtime.settings.ops_token or ""
    return bool(expected) and hmac.compare_digest(candidate.encode(), expected.encode())


def _session_cookie(request: Request) -> str | None:
    runtime: Runtime = request.app.state.runtime
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        _signer(runtime).unsign(cookie, max_age=COOKIE_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    return cookie


def _bearer_ok(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and _token_matches(request.app.state.runtime, token.strip())


def _csrf_token(runtime: Runtime, cookie: str) -> str:
    key = hashlib.sha256(f"ops-csrf:{runtime.settings.secret_key}".encode()).digest()
    return hmac.new(key, cookie.encode(), hashlib.sha256).hexdigest()


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = _TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status_code, headers={"Content-Security-Policy": _CSP})


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _disabled(request: Request) -> bool:
    return not request.app.state.runtime.settings.ops_token


async def dashboard(request: Request) -> Response:
    if _disabled(request):
        return Response(status_code=404)
    cookie = _session_cookie(request)
    if cookie is None and not _bearer_ok(request):
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
    )


def _read_report(runtime: Runtime) -> OpsReport:
    with unit_of_work(runtime.sessions) as session:
        return build_report(session, now=runtime.clock())


async def login(request: Request) -> Response:
    if _disabled(request):
        return Response(status_code=404)
    runtime: Runtime = request.app.state.runtime
    form = await _form(request)
    if not _token_matches(runtime, form.get("token", "")):
        return _render("ops_login.html", status_code=401, error="That token is not valid.")
    response = RedirectResponse("/ops", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        _signer(runtime).sign("ops").decode(),
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
    elif not _bearer_ok(request):
        return Response("Sign in first.", status_code=401)
    event_id = request.path_params["event_id"]
    outcome = await run_in_threadpool(_replay_event, runtime, event_id)
    notice = urlencode({"notice": f"Replay of {event_id}: {outcome}"})
    return RedirectResponse(f"/ops?{notice}", status_code=303)


def _replay_event(runtime: Runtime, event_id: str) -> str:
    try:
        replayed = replay_event(runtime.sessions, event_id, clock=runtime.clock)
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
