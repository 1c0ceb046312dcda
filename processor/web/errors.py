"""Maps the service error tree to HTTP answers in one place: `{error: {code, message}}`."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from processor.checkout.captcha import CaptchaUnavailable
from processor.errors import (
    InvalidInput,
    NotFound,
    PayloadInvalid,
    PaymentDeclined,
    ProcessorError,
    RateLimited,
    SignatureInvalid,
    StripeUnavailable,
)

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[ProcessorError], int]] = [
    (NotFound, 404),
    (InvalidInput, 400),
    (SignatureInvalid, 400),
    (PayloadInvalid, 400),
    (PaymentDeclined, 402),
    (RateLimited, 429),
    (StripeUnavailable, 502),
    (CaptchaUnavailable, 503),
]


# Decline reasons answered as they are: the customer can act on them, and they tell a card
# tester nothing a generic answer does not. Every other reason (fraudulent, lost_card,
# incorrect_cvc, ...) is an oracle for testing stolen cards: it stays in the database for ops.
HELPFUL_DECLINES = frozenset(
    {
        "authentication_required",
        "insufficient_funds",
        "payment_intent_authentication_failure",
        "setup_intent_authentication_failure",
    }
)
GENERIC_DECLINE = "Your card was declined."


def public_decline(
    code: str | None, decline_code: str | None, message: str | None
) -> tuple[str, str]:
    """The `(code, message)` a browser may see for a decline."""
    for reason in (decline_code, code):
        if reason in HELPFUL_DECLINES:
            return reason, message or GENERIC_DECLINE
    return "card_declined", GENERIC_DECLINE


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


async def processor_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProcessorError)
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 500)
    extra: dict[str, object] = {}
    if isinstance(exc, InvalidInput) and exc.field:
        extra["field"] = exc.field
    if isinstance(exc, PaymentDeclined):
        code, message = public_decline(exc.code, exc.decline_code, str(exc))
        return JSONResponse(error_body(code, message), status_code=status)
    if status == 500:
        log.error("unhandled service error %s", type(exc).__name__)
        return JSONResponse(error_body("internal_error", "Something went wrong."), status_code=500)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"retry-after": str(exc.retry_after_seconds)}
    return JSONResponse(
        error_body(exc.code, str(exc), **extra), status_code=status, headers=headers
    )


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def unexpected_error(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "Something went wrong."), status_code=500)


EXCEPTION_HANDLERS = {
    ProcessorError: processor_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
