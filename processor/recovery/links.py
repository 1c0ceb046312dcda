"""Signed, expiring recovery links: `PUBLIC_BASE_URL/recover/<token>`.

A token carries the case id and its purpose only (never a client secret), is signed with
SECRET_KEY under a salt per purpose, and expires after RECOVERY_LINK_TTL. Its age is measured
with the clock passed in, so tests freeze or advance it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from processor.clock import Clock
from processor.errors import InvalidInput, NotFound

RECOVER = "recover"
PURPOSES = frozenset({RECOVER})
_SALT_PREFIX = "processor.recovery-link."


class LinkInvalid(NotFound):
    """The token was not signed by us (tampered, truncated, another purpose or another key)."""

    code = "link_invalid"


class LinkExpired(InvalidInput):
    """A genuine token past its lifetime: we know the case, but the link no longer opens it."""

    code = "link_expired"

    def __init__(self, case_id: int, issued_at: datetime) -> None:
        super().__init__("This link has expired.")
        self.case_id = case_id
        self.issued_at = issued_at


@dataclass(frozen=True)
class RecoveryLink:
    token: str
    url: str
    expires_at: datetime


@lru_cache(maxsize=32)
def _serializer(secret_key: str, purpose: str, clock: Clock) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")

    class ClockedSigner(TimestampSigner):
        # itsdangerous reads time.time(); ours comes from the clock every service receives.
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return URLSafeTimedSerializer(secret_key, salt=_SALT_PREFIX + purpose, signer=ClockedSigner)


def issue_link(
    *,
    secret_key: str,
    public_base_url: str,
    case_id: int,
    ttl: timedelta,
    clock: Clock,
    purpose: str = RECOVER,
) -> RecoveryLink:
    """A fresh link to the recovery page of `case_id`, valid for `ttl` from now."""
    token = _serializer(secret_key, purpose, clock).dumps({"case": case_id, "purpose": purpose})
    url = f"{public_base_url.rstrip('/')}/recover/{token}"
    return RecoveryLink(token=token, url=url, expires_at=clock() + ttl)


def read_link(
    token: str, *, secret_key: str, ttl: timedelta, clock: Clock, purpose: str = RECOVER
) -> int:
    """The case id a genuine, unexpired token names; `LinkInvalid` or `LinkExpired` otherwise."""
    serializer = _serializer(secret_key, purpose, clock)
    try:
        payload = serializer.loads(token, max_age=int(ttl.total_seconds()))
    except SignatureExpired as exc:
        # The signature is good, only the age is wrong: the case id can be trusted.
        if exc.payload is None:  # itsdangerous keeps it whenever the signature checked out
            raise LinkInvalid("This link is not valid.") from exc
        claims = serializer.load_payload(exc.payload)
        issued_at = exc.date_signed or clock()
        raise LinkExpired(_case_id(claims, purpose), issued_at) from exc
    except BadSignature as exc:
        raise LinkInvalid("This link is not valid.") from exc
    return _case_id(payload, purpose)


def _case_id(claims: object, purpose: str) -> int:
    if (
        not isinstance(claims, dict)
        or claims.get("purpose") != purpose
        or not isinstance(claims.get("case"), int)
        or isinstance(claims.get("case"), bool)
    ):
        raise LinkInvalid("This link is not valid.")
    return int(claims["case"])
