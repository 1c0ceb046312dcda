"""The customer's choice on a page outside Stripe.js (3-D Secure, the bank), and sending them
back to the merchant's `return_url` with the query parameters Stripe adds."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from processor.sandbox.context import Call
from processor.sandbox.errors import SandboxError
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import decode_form

if TYPE_CHECKING:
    from processor.sandbox.control import Sandbox


def customer_page_routes(
    path: str,
    show: Callable[[Request], Awaitable[Response]],
    submit: Callable[[Request], Awaitable[Response]],
) -> list[BaseRoute]:
    """A page the customer acts on: GET shows it, POST takes the choice made on it."""
    return [Route(path, show, methods=["GET"]), Route(path, submit, methods=["POST"])]


async def answer_customer_step(
    request: Request, step: Callable[[Call, bool], StripeObject], *, agree: str, what: str
) -> Response:
    """Run the customer's choice (the form's `outcome` is `agree`, or not) as the system; then
    back to the merchant, or a line saying how `what` ended when there is no `return_url`. A
    refusal (the page is no longer open) is shown as the page."""
    sandbox: Sandbox = request.app.state.sandbox
    agreed = decode_form(await request.body()).get("outcome") == agree
    try:
        intent = sandbox.execute(lambda call: step(call, agreed), sandbox.new_call({}, "system"))
    except SandboxError as error:
        return HTMLResponse(html.escape(error.message), error.status)
    return_url = intent.get("_return_url")
    if not return_url:
        return HTMLResponse(f"<p>{what} " + ("completed" if agreed else "failed") + ".</p>")
    return back_to_merchant(intent, return_url)


def back_to_merchant(intent: StripeObject, return_url: str) -> RedirectResponse:
    """303 to `return_url` + `{setup_intent|payment_intent}`, its client secret, and
    `redirect_status` (`processing` counts as succeeded: the customer's part is done)."""
    kind = intent["object"]
    query = urlencode(
        {
            kind: intent["id"],
            f"{kind}_client_secret": intent["client_secret"],
            "redirect_status": "succeeded"
            if intent["status"] in ("succeeded", "processing")
            else "failed",
        }
    )
    separator = "&" if "?" in return_url else "?"
    return RedirectResponse(f"{return_url}{separator}{query}", 303)
