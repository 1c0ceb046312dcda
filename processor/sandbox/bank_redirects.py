"""The sandbox bank page for iDEAL and Bancontact set-ups, and what authorizing leaves behind:
a reusable `sepa_debit` PaymentMethod, attached, with its mandate and `generated_from`
(STRIPE.md 4.4). The single-use bank method itself is never attached.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from processor.sandbox import cards, setup_intents
from processor.sandbox.context import Call
from processor.sandbox.errors import SandboxError, no_such
from processor.sandbox.ids import new_id
from processor.sandbox.payment_methods import attach, build_sepa
from processor.sandbox.returns import answer_customer_step, customer_page_routes
from processor.sandbox.store import StripeObject

if TYPE_CHECKING:  # control imports authentication, which imports this module
    from processor.sandbox.control import Sandbox

# Stripe's test mode decides how the generated SEPA method's debits end by the billing email
# (`generatedSepaDebitIntentsFail@example.com` ...); the sandbox maps that onto its test IBANs.
SUCCEEDING_IBAN = "DE89370400440532013000"
FAILING_IBAN = "DE62370400440532013001"
LABELS = {"ideal": "iDEAL", "bancontact": "Bancontact"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{label} test payment page</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.6rem}}</style></head>
<body><h1>{label} test payment page</h1>
<p>This is a sandbox bank page for SetupIntent <code>{intent}</code>. Authorizing sets up
SEPA Direct Debit for future payments.</p>
<form method="post"><button name="outcome" value="authorize" id="authorize">Authorize test
payment</button><button name="outcome" value="fail" id="fail">Fail test payment</button></form>
</body></html>
"""


def _generated_iban(method: StripeObject) -> cards.TestIban:
    email = (method["billing_details"].get("email") or "").lower()
    failing = "generatedsepadebitintentsfail" in email
    return cards.iban_for(FAILING_IBAN if failing else SUCCEEDING_IBAN)


def generate_sepa_debit(call: Call, intent: StripeObject, method: StripeObject) -> StripeObject:
    """The reusable method the bank set-up leaves: stored, set up, attached to the customer."""
    attempt = call.store.require("setup_attempt", intent["latest_attempt"])
    sepa = build_sepa(
        call,
        _generated_iban(method),
        details=method["billing_details"],
        allow_redisplay=method["allow_redisplay"],
    )
    sepa["sepa_debit"]["generated_from"] = {"charge": None, "setup_attempt": attempt["id"]}
    sepa["_set_up"] = True
    sepa["_mandate"] = new_id("mandate")
    call.store.add(sepa)
    kind = method["type"]
    attempt["payment_method_details"][kind].update(
        generated_sepa_debit=sepa["id"],
        generated_sepa_debit_mandate=sepa["_mandate"],
        iban_last4=sepa["sepa_debit"]["last4"],
        verified_name=method["billing_details"]["name"],
    )
    if intent["customer"]:
        attach(call, sepa, intent["customer"])
    return sepa


def finish(call: Call, intent: StripeObject, method: StripeObject, authorized: bool) -> None:
    """The customer authorized or failed at the bank. Either way the bank method is spent."""
    intent.pop("_bank_redirect", None)
    method["_consumed"] = True
    if not authorized:
        setup_intents.fail_authentication(call, intent, method)
        return
    sepa = generate_sepa_debit(call, intent, method)
    intent["mandate"] = sepa["_mandate"]
    setup_intents.mark_succeeded(call, intent, method)


def _intent_for(call: Call, redirect_id: str) -> StripeObject:
    redirect = call.store.objects.get(redirect_id)
    if redirect is None or redirect["object"] != "bank_redirect":
        raise no_such("bank_redirect", redirect_id)
    return call.store.objects[redirect["intent"]]


async def show(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    try:
        with sandbox.store.lock:
            intent = _intent_for(sandbox.new_call({}, "system"), request.path_params["redirect"])
            method = sandbox.store.objects[intent["payment_method"]]
    except SandboxError as error:
        return HTMLResponse(html.escape(error.message), error.status)
    label = LABELS.get(method["type"], method["type"])
    return HTMLResponse(PAGE.format(label=label, intent=html.escape(intent["id"])))


async def submit(request: Request) -> Response:
    redirect_id = request.path_params["redirect"]

    def run(call: Call, authorized: bool) -> StripeObject:
        intent = _intent_for(call, redirect_id)
        if intent.get("_bank_redirect") != redirect_id or intent["status"] != "requires_action":
            raise SandboxError(400, "invalid_request_error", "This bank page is no longer open.")
        method = call.store.require("payment_method", intent["payment_method"])
        # The customer acts at the bank, outside the API: the events name no request.
        call.request_id = call.idempotency_key = None
        finish(call, intent, method, authorized)
        return intent

    return await answer_customer_step(request, run, agree="authorize", what="Bank authorization")


def routes() -> list[BaseRoute]:
    return customer_page_routes("/_sandbox/bank/{redirect}", show, submit)
