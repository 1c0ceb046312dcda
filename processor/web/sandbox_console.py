"""`/sandbox`: the control page of sandbox mode. Lists who saved what, runs an off-session
charge against the stand-in, and shows the recovery cases it opened. Exists only in sandbox mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from processor.charging import ChargeRequest, charge_off_session
from processor.checkout.customers import customers_with_active_methods
from processor.db.engine import unit_of_work
from processor.errors import ProcessorError
from processor.recovery.cases import recent_cases
from processor.recovery.money import format_money
from processor.runtime import Runtime
from processor.web.security import origin_of

MAX_FORM_BYTES = 4096
_OUTCOMES = {
    "succeeded": "succeeded",
    "processing": "processing; it settles later by webhook",
    "needs_authentication": "declined; the customer must authenticate (email on its way)",
    "needs_new_method": "declined; the customer needs a new payment method (email on its way)",
    "error": "not charged",
}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _overview(runtime: Runtime) -> dict[str, Any]:
    with unit_of_work(runtime.sessions) as session:
        return {
            "customers": customers_with_active_methods(session),
            "cases": [
                (case, format_money(case.amount, case.currency, "en"))
                for case in recent_cases(session)
            ],
        }


async def console(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    context = await run_in_threadpool(_overview, runtime)
    body = _TEMPLATES.get_template("sandbox_console.html").render(
        **context,
        currency=runtime.settings.currency,
        notice=request.query_params.get("notice"),
        failed=request.query_params.get("failed") == "1",
    )
    return HTMLResponse(body)


async def run_charge(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    if origin is not None and origin_of(origin) != origin_of(runtime.settings.public_base_url):
        return Response("This form only works from the sandbox page.", status_code=403)
    raw = await request.body()
    form = {k: v[0] for k, v in parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace")).items()}
    try:
        charge = ChargeRequest(
            customer_id=form.get("customer", ""),
            amount=int(form.get("amount", "0") or 0),
            currency=form.get("currency", runtime.settings.currency),
            payment_method_id=form.get("payment_method") or None,
            description="Sandbox off-session charge",
        )
        outcome = await run_in_threadpool(charge_off_session, runtime, charge)
    except (ProcessorError, ValueError) as exc:
        query = urlencode({"notice": f"Not charged: {exc}", "failed": "1"})
        return RedirectResponse(f"/sandbox?{query}", status_code=303)
    detail = f" ({outcome.message})" if outcome.message else ""
    notice = (
        f"Charge {outcome.reference}: {_OUTCOMES.get(outcome.category, outcome.category)}{detail}"
    )
    query = urlencode({"notice": notice, "failed": "1" if outcome.declined else "0"})
    return RedirectResponse(f"/sandbox?{query}", status_code=303)


def routes() -> list[BaseRoute]:
    return [
        Route("/sandbox", console, methods=["GET"]),
        Route("/sandbox/charges", run_charge, methods=["POST"]),
    ]
