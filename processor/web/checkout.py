"""JSON routes of the save-a-method page: config, sign-up, create-and-confirm, the saved method.

Handlers parse, call a service in a thread, and shape the answer; the customer always comes
from the signed session cookie, never from the request body.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from processor.checkout import captcha, customers, setup_intents, setup_outcome
from processor.config import Settings
from processor.errors import InvalidInput, PaymentDeclined
from processor.runtime import Runtime
from processor.web import limits
from processor.web.errors import public_decline
from processor.web.language import page_language
from processor.web.security import json_route, read_json_object
from processor.web.session import session_customer_id, start_session

NO_STORE = {"cache-control": "no-store"}
NO_SESSION = "Sign up first: this browser has no session."
TOO_MANY_DECLINES = "Too many declined attempts. Please try again later."


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string.", field=name)
    return value


def _required_customer(request: Request, settings: Settings) -> str:
    customer_id = session_customer_id(request, settings)
    if customer_id is None:
        raise HTTPException(401, NO_SESSION)
    return customer_id


async def config(request: Request) -> JSONResponse:
    """What the page needs to load Stripe.js, and the language to speak."""
    runtime = _runtime(request)
    settings = runtime.settings
    customer_id = session_customer_id(request, settings)
    record = (
        await run_in_threadpool(customers.find_customer, runtime, customer_id)
        if customer_id
        else None
    )
    return JSONResponse(
        {
            "locale": page_language(request, record.preferred_locale if record else None),
            "publishableKey": settings.stripe_publishable_key,
            "stripeJsUrl": settings.stripe_js_url,
            "currency": settings.currency,
            "sandbox": settings.sandbox,
            "merchantName": settings.merchant_name,
            "captcha": _captcha_config(settings),
        },
        headers=NO_STORE,
    )


async def create_customer(request: Request) -> JSONResponse:
    """Sign up: create (or, for the same browser and email, reuse) the Stripe Customer."""
    runtime = _runtime(request)
    address = limits.client_address(request)
    await limits.take(
        request,
        limits.SIGN_UPS_PER_ADDRESS,
        address,
        runtime.settings.signup_limit,
        "Too many sign-ups from your network. Please try again later.",
    )
    body = await read_json_object(request)
    await run_in_threadpool(
        captcha.require_solved, runtime.captcha, body.get("captchaToken"), address
    )
    sign_up = customers.SignUp(
        email=_optional_text(body, "email") or "",
        name=_optional_text(body, "name") or "",
        locale=_optional_text(body, "locale"),
    )
    record = await run_in_threadpool(
        customers.sign_up,
        runtime,
        sign_up,
        session_customer_id=session_customer_id(request, runtime.settings),
    )
    response = JSONResponse(_customer_json(record), headers=NO_STORE)
    start_session(response, runtime.settings, record.id)
    return response


async def current_customer(request: Request) -> JSONResponse:
    """Who this browser signed up as, so a reload can skip the sign-up step."""
    runtime = _runtime(request)
    customer_id = _required_customer(request, runtime.settings)
    record = await run_in_threadpool(customers.find_customer, runtime, customer_id)
    if record is None:
        raise HTTPException(401, NO_SESSION)
    return JSONResponse(_customer_json(record), headers=NO_STORE)


async def create_confirm_intent(request: Request) -> JSONResponse:
    """`{confirmationTokenId}` -> `{client_secret, status}` for the session's customer."""
    runtime = _runtime(request)
    customer_id = _required_customer(request, runtime.settings)
    body = await read_json_object(request)
    settings = runtime.settings
    failure_limits = (
        (limits.FAILED_SETUPS_PER_CUSTOMER, customer_id, settings.failed_setup_limit_per_customer),
        (
            limits.FAILED_SETUPS_PER_ADDRESS,
            limits.client_address(request),
            settings.failed_setup_limit_per_ip,
        ),
    )
    for scope, subject, limit in failure_limits:
        await limits.refuse_when_exhausted(request, scope, subject, limit, TOO_MANY_DECLINES)
    try:
        started = await run_in_threadpool(
            lambda: setup_intents.create_and_confirm(
                runtime,
                customer_id=customer_id,
                confirmation_token_id=body.get("confirmationTokenId"),
                return_url=f"{settings.public_base_url.rstrip('/')}/",
            )
        )
    except PaymentDeclined:
        for scope, subject, limit in failure_limits:
            await limits.count_failure(request, scope, subject, limit)
        raise
    return JSONResponse(
        {
            "client_secret": started.client_secret,
            "status": started.status,
            "setup_intent": started.setup_intent_id,
        },
        headers=NO_STORE,
    )


async def setup_result(request: Request) -> JSONResponse:
    """Where one of the session customer's setups stands and what it saved."""
    runtime = _runtime(request)
    customer_id = _required_customer(request, runtime.settings)
    setup_intent_id = request.path_params["setup_intent_id"]
    outcome = await run_in_threadpool(
        lambda: setup_outcome.setup_outcome(
            runtime, customer_id=customer_id, setup_intent_id=setup_intent_id
        )
    )
    method = outcome.payment_method
    return JSONResponse(
        {
            "setup_intent": outcome.setup_intent_id,
            "status": outcome.status,
            "payment_method": None
            if method is None
            else {
                "id": method.id,
                "type": method.type,
                "brand": method.brand,
                "last4": method.last4,
                "exp_month": method.exp_month,
                "exp_year": method.exp_year,
                "generated_from": method.generated_from,
            },
            "error": None if outcome.error_code is None else _public_error(outcome),
        },
        headers=NO_STORE,
    )


def _captcha_config(settings: Settings) -> dict[str, str] | None:
    provider = settings.captcha_provider
    if provider is None or provider == "off":
        return None
    return {
        "provider": provider,
        "siteKey": settings.captcha_site_key or "",
        "scriptUrl": captcha.WIDGET_SCRIPTS.get(provider, ""),
    }


def _public_error(outcome: setup_outcome.SetupOutcome) -> dict[str, str]:
    code, message = public_decline(outcome.error_code, None, outcome.error_message)
    return {"code": code, "message": message}


def _customer_json(record: customers.CustomerRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "email": record.email,
        "name": record.name,
        "locale": record.preferred_locale,
    }


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/config", config, methods=["GET"]),
        json_route("/customers", create_customer, settings),
        Route("/customers/me", current_customer, methods=["GET"]),
        json_route("/create-confirm-intent", create_confirm_intent, settings),
        Route("/setup-intents/{setup_intent_id}", setup_result, methods=["GET"]),
    ]
