"""What a caller asks for (`ChargeRequest`) and what it gets back (`ChargeOutcome`).

Plain values with no behaviour beyond naming outcomes, so the CLI, the batch runner and other
services can build and read them without knowing how a charge is made.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from processor.charging.amounts import check_amount, normalise_currency
from processor.errors import InvalidInput, StripeUnavailable

IDEMPOTENCY_PREFIX = "charge:"
MAX_REFERENCE_LENGTH = 200  # the column's width; the key adds its prefix and stays under 255
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#@+=-]*")

# Where a charge ended up, as the summary groups them.
SUCCEEDED = "succeeded"
PROCESSING = "processing"
NEEDS_AUTHENTICATION = "needs_authentication"
NEEDS_NEW_METHOD = "needs_new_method"
ERROR = "error"
CATEGORIES = (SUCCEEDED, PROCESSING, NEEDS_AUTHENTICATION, NEEDS_NEW_METHOD, ERROR)


def new_reference() -> str:
    """A fresh reference for a charge whose caller did not name one."""
    return f"chg_{secrets.token_hex(12)}"


def idempotency_key(reference: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{reference}"


def check_reference(reference: str) -> str:
    if (
        not reference
        or len(reference) > MAX_REFERENCE_LENGTH
        or not _REFERENCE.fullmatch(reference)
    ):
        raise InvalidInput(
            f"reference {reference!r} must be 1-{MAX_REFERENCE_LENGTH} characters: letters, "
            "digits and . _ : / # @ + = - (starting with a letter or digit)",
            field="reference",
            code="invalid_reference",
        )
    return reference


def check_customer_id(customer_id: str) -> str:
    return _check_stripe_id(customer_id, r"cus_[A-Za-z0-9]+", "customer", "customer")


def check_payment_method_id(payment_method_id: str) -> str:
    return _check_stripe_id(
        payment_method_id, r"pm_[A-Za-z0-9_]+", "payment_method", "payment method"
    )


def _check_stripe_id(value: str, pattern: str, field: str, label: str) -> str:
    """`value` if it has the shape of a Stripe id of this kind; the prefix is named otherwise."""
    if not re.fullmatch(pattern, value or ""):
        prefix = pattern.split("_", 1)[0]
        raise InvalidInput(
            f"{label} {value!r} is not a Stripe {label} id ({prefix}_...)",
            field=field,
            code=f"invalid_{field}",
        )
    return value


@dataclass(frozen=True)
class ChargeRequest:
    """One off-session charge to make. `validated()` checks it without calling anyone."""

    customer_id: str
    amount: int
    currency: str
    payment_method_id: str | None = None
    reference: str | None = None
    description: str | None = None

    def problems(self) -> list[InvalidInput]:
        """Every reason this request cannot be sent, one per field, without calling anyone."""
        found: list[InvalidInput] = []

        def check(step: Callable[[], object]) -> None:
            try:
                step()
            except InvalidInput as exc:
                found.append(exc)

        if self.reference is not None:
            check(lambda: check_reference(self.reference or ""))
        check(lambda: check_customer_id(self.customer_id))
        if self.payment_method_id:
            check(lambda: check_payment_method_id(self.payment_method_id or ""))
        try:
            currency = normalise_currency(self.currency)
        except InvalidInput as exc:
            found.append(exc)
            currency = ""
        check(lambda: check_amount(self.amount, currency))
        return found

    def validated(self) -> ChargeRequest:
        """The same request, normalised, with a reference; raises `InvalidInput` if unusable."""
        problems = self.problems()
        if problems:
            raise problems[0]
        return ChargeRequest(
            customer_id=self.customer_id,
            amount=self.amount,
            currency=normalise_currency(self.currency),
            payment_method_id=self.payment_method_id or None,
            reference=self.reference or new_reference(),
            description=(self.description or "").strip() or None,
        )


@dataclass(frozen=True)
class ChargeOutcome:
    """What happened to one charge, as stored in its `charges` row.

    `status` is the row's status; `category` groups it for people; `resumed` is true when the
    outcome was already final in the database and nothing was sent to Stripe this time.
    """

    reference: str
    status: str
    customer_id: str
    amount: int
    currency: str
    payment_method_id: str | None = None
    payment_intent_id: str | None = None
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    recovery_kind: str | None = None
    resumed: bool = False

    @property
    def category(self) -> str:
        if self.status == "succeeded":
            return SUCCEEDED
        if self.status == "processing":
            return PROCESSING
        if self.recovery_kind == "authentication_required" or self.status == "requires_action":
            return NEEDS_AUTHENTICATION
        if self.status == "failed":
            return NEEDS_NEW_METHOD
        return ERROR

    @property
    def declined(self) -> bool:
        return self.category in (NEEDS_AUTHENTICATION, NEEDS_NEW_METHOD)


class ChargeRefused(InvalidInput):
    """Nothing was charged because the request cannot succeed as given (Stripe said 4xx)."""

    def __init__(
        self, message: str, *, reference: str, code: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.reference = reference


class ChargeUnresolved(StripeUnavailable):
    """Stripe could not be asked or did not answer: the row stays pending; rerun to resolve."""

    def __init__(self, message: str, *, reference: str) -> None:
        super().__init__(message)
        self.reference = reference
