"""What `POST /webhooks/stripe` calls, in a worker thread: verify, parse, record.

Raises `SignatureInvalid` or `PayloadInvalid` (400, nothing written); otherwise returns a
`Receipt` whose outcome the web layer turns into 200, 500 or 503 and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from processor.clock import Clock
from processor.errors import PayloadInvalid
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import Outcome, record_event
from processor.webhooks.verify import verify_signature


@dataclass(frozen=True, slots=True)
class Receipt:
    outcome: Outcome
    event_id: str
    event_type: str
    secret_index: int


@dataclass(frozen=True)
class WebhookReceiver:
    sessions: sessionmaker[Session]
    secrets: Sequence[str]
    tolerance_seconds: int
    clock: Clock

    def receive(self, body: bytes, signature_header: str | None) -> Receipt:
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadInvalid("body is not UTF-8 text") from None
        now = self.clock()
        secret_index = verify_signature(
            payload,
            signature_header,
            self.secrets,
            tolerance=self.tolerance_seconds,
            now=now.timestamp(),
        )
        event = parse_event(payload)
        outcome = record_event(self.sessions, event, now=now, secret_index=secret_index)
        return Receipt(outcome, event.id, event.type, secret_index)
