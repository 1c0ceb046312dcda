"""The 3-D Secure challenge page for `redirect_to_url` next actions (no Stripe.js involved).

`GET /_sandbox/3ds/{attempt}` shows Complete and Fail buttons; the POST applies the outcome
and sends the browser to the intent's `return_url` with Stripe's query parameters.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from processor.sandbox import authentication, intents
from processor.sandbox.context import Call
from processor.sandbox.control import Sandbox
from processor.sandbox.errors import SandboxError
from processor.sandbox.returns import answer_customer_step, customer_page_routes
from processor.sandbox.store import StripeObject

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3D Secure test page</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.6rem}}</style></head>
<body><h1>3D Secure 2 test page</h1>
<p>This is a sandbox authentication page for {label} <code>{intent}</code>.</p>
<form method="post"><button name="outcome" value="complete" id="complete">Complete</button>
<button name="outcome" value="fail" id="fail">Fail</button></form></body></html>
"""


async def show(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    try:
        with sandbox.store.lock:
            call = sandbox.new_call({}, "system")
            intent = intents.intent_for_attempt(call, request.path_params["attempt"])
    except SandboxError as error:
        return HTMLResponse(html.escape(error.message), error.status)
    return HTMLResponse(
        PAGE.format(label=intents.LABEL[intent["object"]], intent=html.escape(intent["id"]))
    )


async def submit(request: Request) -> Response:
    attempt = request.path_params["attempt"]

    def run(call: Call, success: bool) -> StripeObject:
        intent = intents.intent_for_attempt(call, attempt)
        if intent.get("_three_ds_attempt") != attempt:
            raise SandboxError(400, "invalid_request_error", "This challenge is no longer open.")
        authentication.authenticate(call, intent, success)
        return intent

    return await answer_customer_step(request, run, agree="complete", what="Authentication")


def routes() -> list[BaseRoute]:
    return customer_page_routes("/_sandbox/3ds/{attempt}", show, submit)
