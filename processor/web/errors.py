"""Maps the service error tree to HTTP answers in one place: `{error: {code, message}}`."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from processor.errors import (
    InvalidInput,
    NotFound,
    PayloadInvalid,
    PaymentDeclined,
    ProcessorError,
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
    (StripeUnavailable, 502),
]


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


async def processor_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProcessorError)
    status = next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), 500)
    extra: dict[str, object] = {}
    if isinstance(exc, InvalidInput) and exc.field:
        extra["field"] = exc.field
    if isinstance(exc, PaymentDeclined) and exc.decline_code:
        extra["decline_code"] = exc.decline_code
    if status == 500:
        log.error("unhandled service error %s", type(exc).__name__)
        return JSONResponse(error_body("internal_error", "Something went wrong."), status_code=500)
    return JSONResponse(error_body(exc.code, str(exc), **extra), status_code=status)


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
