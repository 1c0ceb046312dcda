"""The Stripe API routes the sandbox answers, and which key each one takes.

`secret`: server routes. `client`: routes Stripe.js calls with the publishable key (plus the
intent's client secret); a secret key works there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from processor.sandbox import (
    authentication,
    captures,
    charges,
    confirmation_tokens,
    customers,
    events,
    payment_intents,
    payment_method_create,
    payment_methods,
    refunds,
    setup_intents,
)
from processor.sandbox.context import Call
from processor.sandbox.store import StripeObject

Handler = Callable[[Call], StripeObject]


@dataclass(frozen=True)
class ApiRoute:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    access: str  # "secret" | "client"


def _route(method: str, template: str, handler: Handler, access: str = "secret") -> ApiRoute:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return ApiRoute(method, re.compile(f"^{regex}$"), handler, access)


ROUTES: tuple[ApiRoute, ...] = (
    # Customers
    _route("POST", "/v1/customers", customers.create),
    _route("GET", "/v1/customers", customers.list_route),
    _route("GET", "/v1/customers/{customer}/payment_methods", payment_methods.list_for_customer),
    _route(
        "GET",
        "/v1/customers/{customer}/payment_methods/{id}",
        payment_methods.retrieve_for_customer,
    ),
    _route("GET", "/v1/customers/{id}", customers.retrieve),
    _route("POST", "/v1/customers/{id}", customers.update),
    _route("DELETE", "/v1/customers/{id}", customers.delete),
    # Payment methods
    _route("POST", "/v1/payment_methods", payment_method_create.create),
    _route("GET", "/v1/payment_methods", payment_methods.list_route),
    _route("GET", "/v1/payment_methods/{id}", payment_methods.retrieve),
    _route("POST", "/v1/payment_methods/{id}", payment_methods.update),
    _route("POST", "/v1/payment_methods/{id}/attach", payment_methods.attach_route),
    _route("POST", "/v1/payment_methods/{id}/detach", payment_methods.detach_route),
    # Confirmation tokens: the test helper (server) and Stripe.js's create (client)
    _route("POST", "/v1/test_helpers/confirmation_tokens", confirmation_tokens.create_with_helper),
    _route("POST", "/v1/confirmation_tokens", confirmation_tokens.create_client_side, "client"),
    _route("GET", "/v1/confirmation_tokens/{id}", confirmation_tokens.retrieve),
    # Setup intents
    _route("POST", "/v1/setup_intents", setup_intents.create),
    _route("GET", "/v1/setup_intents", setup_intents.list_route),
    _route("GET", "/v1/setup_intents/{id}", setup_intents.retrieve, "client"),
    _route("POST", "/v1/setup_intents/{id}", setup_intents.update),
    _route("POST", "/v1/setup_intents/{id}/confirm", setup_intents.confirm, "client"),
    _route("POST", "/v1/setup_intents/{id}/cancel", setup_intents.cancel),
    # Payment intents
    _route("POST", "/v1/payment_intents", payment_intents.create),
    _route("GET", "/v1/payment_intents", payment_intents.list_route),
    _route("GET", "/v1/payment_intents/{id}", payment_intents.retrieve, "client"),
    _route("POST", "/v1/payment_intents/{id}", payment_intents.update),
    _route("POST", "/v1/payment_intents/{id}/confirm", payment_intents.confirm, "client"),
    _route("POST", "/v1/payment_intents/{id}/cancel", payment_intents.cancel),
    _route("POST", "/v1/payment_intents/{id}/capture", captures.capture),
    # Refunds
    _route("POST", "/v1/refunds", refunds.create),
    _route("GET", "/v1/refunds/{id}", refunds.retrieve),
    # Charges and events
    _route("GET", "/v1/charges/{id}", charges.retrieve),
    _route("GET", "/v1/events", events.list_route),
    _route("GET", "/v1/events/{id}", events.retrieve),
    # Sandbox-only: finish 3-D Secure as the stand-in's challenge dialog does
    _route("POST", "/v1/_sandbox/authenticate", authentication.authenticate_route, "client"),
)


def match(method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
    """The route for `method path`, or None; raises nothing."""
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None
