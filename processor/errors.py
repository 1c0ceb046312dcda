"""The error tree every service raises; the web layer maps it to HTTP statuses in one place.

    ProcessorError
    ├── InvalidInput             bad input from a caller: nothing was changed (4xx)
    │   └── NotFound             the thing named does not exist (404)
    ├── SignatureInvalid         a webhook failed verification (400)
    ├── PayloadInvalid           a verified webhook body is not a usable event (400)
    ├── PaymentDeclined          Stripe said 402: an outcome the caller must show, not a crash
    ├── StripeUnavailable        Stripe could not be reached or answered 429/5xx (502/503)
    ├── RateLimited              too many requests from one address, customer or case (429)
    └── DeliveryError            an email could not be sent; `retryable` says whether to try again

Services raise these with the original exception as `__cause__`.
"""

from __future__ import annotations


class ProcessorError(Exception):
    """Base of every error this package raises on purpose."""

    code = "processor_error"


class InvalidInput(ProcessorError):
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        if code is not None:
            self.code = code


class NotFound(InvalidInput):
    code = "not_found"


class SignatureInvalid(ProcessorError):
    code = "signature_invalid"


class PayloadInvalid(ProcessorError):
    code = "payload_invalid"


class PaymentDeclined(ProcessorError):
    """A card or bank declined; `message` is Stripe's customer-safe text."""

    code = "card_declined"

    def __init__(self, message: str, *, code: str | None, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or "card_declined"
        self.decline_code = decline_code


class StripeUnavailable(ProcessorError):
    code = "stripe_unavailable"


class RateLimited(ProcessorError):
    """Over a card-testing limit: nothing was sent to Stripe; try again after `retry_after`."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class DeliveryError(ProcessorError):
    code = "delivery_failed"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
