"""Stripe-looking identifiers: `cus_…`, `pi_…`, client secrets `pi_…_secret_…`, `req_…`."""

from __future__ import annotations

import os
import string

_ALPHABET = (string.ascii_letters + string.digits).encode()
# Each random byte maps to one of 62 characters (the slight bias is harmless for test ids).
_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


def _random(length: int) -> str:
    return os.urandom(length).translate(_TABLE).decode()


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{_random(length)}"


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{_random(25)}"


def request_id() -> str:
    return new_id("req", 14)
