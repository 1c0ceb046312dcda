"""Idempotency keys (STRIPE.md 7.1): POST only, kept 24 h, replayed byte for byte.

A key is scoped to the API key that sent it. Reusing it with other parameters is a 400
`idempotency_error`; reusing it while the first request runs is a 409.
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
    fingerprint: str
    created: float
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    in_flight: bool = True


def fingerprint(method: str, path: str, params: Any) -> str:
    return json.dumps([method, path, params], sort_keys=True, separators=(",", ":"))


class IdempotencyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[tuple[str, str], Outcome] = {}

    def reset(self) -> None:
        with self._lock:
            self._outcomes.clear()

    def begin(self, scope: str, key: str, print_: str, now: float) -> Outcome | None:
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
                self._outcomes[(scope, key)] = Outcome(print_, now)
                return None
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
