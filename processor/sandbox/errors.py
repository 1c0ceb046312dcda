"""Stripe's error bodies and statuses, raised by resources and rendered by the app.

SandboxError(status, type, message, code, param, ...)
  raised anywhere below the routes; the app turns it into `{"error": {...}}`
  with Stripe's null-free shape and `doc_url` for coded errors.
"""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/{}"


class SandboxError(Exception):
    """An API error in Stripe's shape. `extra` carries embedded objects (intent, method, charge)."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.headers = headers or {}
        self.extra = extra

    def error_object(self) -> dict[str, Any]:
        """The `error` hash: null fields are left out, as Stripe does."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_URL.format(self.code.replace("_", "-"))
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.param:
            error["param"] = self.param
        error.update({key: value for key, value in self.extra.items() if value is not None})
        return error

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error = self.error_object()
        if request_id and self.status not in (401, 429):
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> SandboxError:
    return SandboxError(status, "invalid_request_error", message, code=code, param=param)


# The `param` Stripe names when the id in the path names nothing (`id` for the rest).
PATH_PARAMS = {"payment_intent": "intent", "setup_intent": "intent"}


def no_such(kind: str, object_id: str, *, param: str | None = None) -> SandboxError:
    """404 when the id is in the path; 400 when it came in a parameter (`param` set)."""
    return SandboxError(
        400 if param else 404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param or PATH_PARAMS.get(kind, "id"),
    )


def unexpected_state(kind: str, object_id: str, status: str, action: str) -> SandboxError:
    label = {"setup_intent": "SetupIntent", "payment_intent": "PaymentIntent"}[kind]
    return SandboxError(
        400,
        "invalid_request_error",
        f"You cannot {action} this {label} because it has a status of {status}.",
        code=f"{kind}_unexpected_state",
        **{kind: None},
    )


def authentication(message: str) -> SandboxError:
    return SandboxError(401, "invalid_request_error", message)
