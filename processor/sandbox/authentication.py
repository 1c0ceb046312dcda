"""Finishing the next action: the customer completes or fails 3-D Secure (or authorizes at the
bank, for iDEAL and Bancontact) on an intent in `requires_action`, with the state changes and
events of STRIPE.md 2.7 and 3.3.
"""

from __future__ import annotations

from processor.sandbox import bank_redirects, intents, payment_outcomes, setup_intents
from processor.sandbox.context import Call
from processor.sandbox.errors import invalid_request, unexpected_state
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import as_str, reject_unknown

OUTCOMES = {"complete": True, "succeed": True, "success": True, "fail": False, "failure": False}


def authenticate(call: Call, intent: StripeObject, success: bool) -> StripeObject:
    """Apply the outcome; answers the updated intent (never raises a card error)."""
    if intent["status"] != "requires_action":
        raise unexpected_state(intent["object"], intent["id"], intent["status"], "authenticate")
    method = call.store.require("payment_method", intent["payment_method"])
    intent.pop("_three_ds_attempt", None)
    if intent.get("_bank_redirect"):
        bank_redirects.finish(call, intent, method, success)
    elif intent["object"] == "setup_intent":
        if success:
            setup_intents.succeed(call, intent, method)
        else:
            setup_intents.fail_authentication(call, intent, method)
    elif success:
        payment_outcomes.charge_after_authentication(call, intent, method, raise_error=False)
    else:
        payment_outcomes.fail_authentication(call, intent, method)
    return intent


def outcome_of(call: Call) -> bool:
    outcome = as_str(call.params, "outcome")
    if outcome is None and "success" in call.params:
        return call.params["success"] in ("true", "1")
    if outcome not in OUTCOMES:
        raise invalid_request("outcome must be complete or fail", param="outcome")
    return OUTCOMES[outcome]


def authenticate_route(call: Call) -> StripeObject:
    """`POST /v1/_sandbox/authenticate` {intent, client_secret, outcome} (publishable key)."""
    reject_unknown(call.params, intents.CLIENT_EXTRAS | {"intent", "outcome", "success"})
    intent_id = as_str(call.params, "intent") or ""
    kind = "setup_intent" if intent_id.startswith("seti_") else "payment_intent"
    intent = call.store.require(kind, intent_id, param="intent")
    intents.check_client_secret(call, intent)
    # The customer finishes 3-D Secure outside the API: its events name no request.
    call.request_id = call.idempotency_key = None
    authenticate(call, intent, outcome_of(call))
    return intents.view(call, intent)
