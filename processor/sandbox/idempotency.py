"""Idempotency keys (STRIPE.md 7.1): POST only, kept 24 h, replayed byte for byte.

A key is scoped to the API key that sent it. Reusing it on another endpoint or with other
parameters is a 400 `idempotency_error`; reusing it while the first request runs is a 409.
A replay carries its own `Request-Id` and names the first one in `Original-Request`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from processor.sandbox.errors import SandboxError

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class Outcome:
    endpoint: str  # "POST /v1/customers"
    fingerprint: str
    created: float
    request_id: str
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    in_flight: bool = True


def fingerprint(params: Any) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def replay_headers(outcome: Outcome, key: str, request_id: str) -> dict[str, str]:
    """The first answer's headers, under this request's own id, marked as a replay."""
    return {
        **outcome.headers,
        **answer_headers(key, outcome.request_id),
        "Request-Id": request_id,
        "Idempotent-Replayed": "true",
    }


def answer_headers(key: str, original_request: str) -> dict[str, str]:
    """What every answer to a request with a key carries, the first one included."""
    return {"Idempotency-Key": key, "Original-Request": original_request}


def _other_endpoint(key: str, first: str, now: str) -> SandboxError:
    return SandboxError(
        400,
        "idempotency_error",
        f"Keys for idempotent requests can only be used for the same endpoint they were first "
        f"used for ('{first}' vs '{now}'). Try using a key other than '{key}' if you meant to "
        "execute a different request.",
    )


class IdempotencyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], Outcome] = {}

    def reset(self) -> None:
        with self._lock:
            self._outcomes.clear()

    def begin(
        self, scope: str, key: str, endpoint: str, print_: str, now: float, request_id: str
    ) -> Outcome | None:
        """None: go ahead (the key is now in flight). An Outcome: replay it. Or raise."""
        if len(key) > MAX_KEY_LENGTH:
            raise SandboxError(
                400,
                "invalid_request_error",
                f"Invalid Idempotency-Key: keys may be at most {MAX_KEY_LENGTH} characters.",
            )
        with self._lock:
            existing = self._outcomes.get((scope, key))
            if existing is not None and existing.created <= now - TTL_SECONDS:
                existing = None
            if existing is None:
                if len(self._outcomes) > 10_000:
                    self._prune(now)
                self._outcomes[(scope, key)] = Outcome(endpoint, print_, now, request_id)
                return None
        if existing.endpoint != endpoint:
            raise _other_endpoint(key, existing.endpoint, endpoint)
        if existing.fingerprint != print_:
            raise SandboxError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        if existing.in_flight:
            raise SandboxError(
                409,
                "invalid_request_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going "
                "through): " + key + ". Please try again later.",
                code="idempotency_key_in_use",
            )
        return existing

    def finish(
        self, scope: str, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        with self._lock:
            outcome = self._outcomes.get((scope, key))
            if outcome is not None:
                outcome.status, outcome.body, outcome.headers = status, body, headers
                outcome.in_flight = False

    def abandon(self, scope: str, key: str) -> None:
        """Forget a key whose request never executed, so it is safe to retry."""
        with self._lock:
            self._outcomes.pop((scope, key), None)

    def _prune(self, now: float) -> None:
        for entry, outcome in list(self._outcomes.items()):
            if outcome.created <= now - TTL_SECONDS and not outcome.in_flight:
                del self._outcomes[entry]
