"""Stripe-looking identifiers: `cus_…`, `pi_…`, client secrets `pi_…_secret_…`, `req_…`."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{_random(length)}"


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{_random(25)}"


def request_id() -> str:
    return new_id("req", 14)
