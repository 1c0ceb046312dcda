"""The recovery page, `GET /recover/{token}`, and its JSON companions under /recover/{token}/:

    GET  case            what the page shows (410 once the link expired, 404 for a forged one)
    POST payment-intent  the PaymentIntent's client secret, in the body: never in a URL
    POST confirm         confirm the same PaymentIntent with a ConfirmationToken (new method)
    POST fresh-link      email a new link to the address on file (expired links; rate-limited)

Handlers parse, run the service in a thread and shape the answer. The case turns recovered
only when the `payment_intent.succeeded` webhook says so; the page polls `case` to see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from processor.config import Settings
from processor.recovery import page
from processor.recovery.links import LinkExpired, LinkInvalid
from processor.recovery.money import format_money
from processor.recovery.summary import CaseSummary
from processor.runtime import Runtime
from processor.web import limits
from processor.web.errors import error_body, public_decline
from processor.web.language import page_language
from processor.web.pages import PAGES_DIRECTORY
from processor.web.security import json_route, read_json_object

RECOVER_HTML = PAGES_DIRECTORY / "recover.html"
NO_STORE = {"cache-control": "no-store"}
# The token in the address is a credential: keep it out of Referer headers and search indexes.
PAGE_HEADERS = {**NO_STORE, "referrer-policy": "no-referrer", "x-robots-tag": "noindex"}

Handler = Callable[[Request], Awaitable[Response]]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _linked(request: Request) -> page.LinkedCase:
    runtime = _runtime(request)
    token = request.path_params["token"]
    return await run_in_threadpool(page.open_link, runtime, token)


def _answers_domain_refusals(handler: Handler) -> Handler:
    """Refusals the page shows as states, each with its own status, in the usual error body."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except page.CaseClosed as exc:
            body = error_body(exc.code, str(exc), state=exc.status)
            return JSONResponse(body, status_code=409, headers=NO_STORE)
        except LinkExpired as exc:
            return JSONResponse(error_body(exc.code, str(exc)), status_code=410, headers=NO_STORE)
        except page.FreshLinkLimited as exc:
            headers = {**NO_STORE, "retry-after": str(exc.retry_after_seconds)}
            return JSONResponse(error_body(exc.code, str(exc)), status_code=429, headers=headers)

    return wrapped


async def recover_page(request: Request) -> Response:
    """The page itself; a forged token gets the same page with 404, which then says so."""
    try:
        await _linked(request)
        status = 200
    except LinkInvalid:
        status = 404
    return FileResponse(RECOVER_HTML, status_code=status, headers=PAGE_HEADERS)


@_answers_domain_refusals
async def case_summary(request: Request) -> Response:
    linked = await _linked(request)
    settings = _runtime(request).settings
    body = _describe(linked, settings, request)
    if linked.expired and linked.case.is_open:
        expired = error_body("link_expired", "This link has expired.")
        return JSONResponse({**body, **expired}, status_code=410, headers=NO_STORE)
    return JSONResponse(body, headers=NO_STORE)


@_answers_domain_refusals
async def payment_intent(request: Request) -> Response:
    runtime = _runtime(request)
    case = page.usable_case(await _linked(request))
    await _count_attempt(request, case)
    intent = await run_in_threadpool(page.intent_for_page, runtime, case)
    return JSONResponse(
        {
            "status": intent.status,
            "clientSecret": intent.client_secret,
            "paymentMethod": intent.payment_method_id,
        },
        headers=NO_STORE,
    )


@_answers_domain_refusals
async def confirm(request: Request) -> Response:
    runtime = _runtime(request)
    body = await read_json_object(request)
    case = page.usable_case(await _linked(request))
    await _count_attempt(request, case)
    intent = await run_in_threadpool(
        lambda: page.confirm_with_confirmation_token(
            runtime,
            case,
            confirmation_token_id=body.get("confirmationTokenId"),
            return_url=_page_url(runtime.settings, request),
        )
    )
    return JSONResponse(
        {"status": intent.status, "clientSecret": intent.client_secret}, headers=NO_STORE
    )


@_answers_domain_refusals
async def fresh_link(request: Request) -> Response:
    runtime = _runtime(request)
    linked = await _linked(request)
    sent_to = await run_in_threadpool(lambda: page.request_fresh_link(runtime, linked))
    return JSONResponse({"sentTo": sent_to}, status_code=202, headers=NO_STORE)


async def _count_attempt(request: Request, case: CaseSummary) -> None:
    """Each payment attempt counts against the case: one link cannot test a stack of cards."""
    await limits.take(
        request,
        limits.ATTEMPTS_PER_RECOVERY_CASE,
        str(case.id),
        _runtime(request).settings.recovery_attempt_limit,
        "Too many payment attempts on this link. Please try again later.",
    )


def _describe(linked: page.LinkedCase, settings: Settings, request: Request) -> dict[str, Any]:
    case = linked.case
    locale = page_language(request, case.contact.preferred_locale if case.contact else None)
    method = case.method
    return {
        "state": case.status,
        "kind": case.kind,
        "linkExpired": linked.expired,
        "locale": locale,
        "merchantName": settings.merchant_name,
        "amount": case.amount,
        "currency": case.currency,
        "amountDisplay": format_money(case.amount, case.currency, locale),
        "declineCode": public_decline(case.error_code, case.decline_code, None)[0],
        "paymentMethod": None
        if method is None
        else {"type": method.type, "brand": method.card_brand, "last4": method.last4},
        "publishableKey": settings.stripe_publishable_key,
        "stripeJsUrl": settings.stripe_js_url,
        "sandbox": settings.sandbox,
        "returnUrl": _page_url(settings, request),
    }


def _page_url(settings: Settings, request: Request) -> str:
    return f"{settings.public_base_url.rstrip('/')}/recover/{request.path_params['token']}"


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/recover/{token}", recover_page, methods=["GET"]),
        Route("/recover/{token}/case", case_summary, methods=["GET"]),
        json_route("/recover/{token}/payment-intent", payment_intent, settings),
        json_route("/recover/{token}/confirm", confirm, settings),
        json_route("/recover/{token}/fresh-link", fresh_link, settings),
    ]
