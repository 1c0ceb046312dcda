"""Recovery links: signed with SECRET_KEY, carrying the case id only, expiring after the TTL."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from freezegun import freeze_time

from processor.clock import utc_now
from processor.recovery.links import LinkExpired, LinkInvalid, issue_link, read_link

SECRET = "k" * 40
TTL = timedelta(days=7)


def _issue(case_id: int = 42, secret: str = SECRET) -> str:
    return issue_link(
        secret_key=secret,
        public_base_url="https://shop.example/",
        case_id=case_id,
        ttl=TTL,
        clock=utc_now,
    ).token


def _read(token: str, secret: str = SECRET) -> int:
    return read_link(token, secret_key=secret, ttl=TTL, clock=utc_now)


@freeze_time("2026-11-30 12:00:00")
def test_link_names_the_case_and_its_expiry() -> None:
    link = issue_link(
        secret_key=SECRET,
        public_base_url="https://shop.example/",
        case_id=42,
        ttl=TTL,
        clock=utc_now,
    )
    assert link.url == f"https://shop.example/recover/{link.token}"
    assert link.expires_at == utc_now() + TTL
    assert _read(link.token) == 42


def test_token_carries_only_the_case_id_and_purpose() -> None:
    token = _issue(7)
    payload = token.split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims == {"case": 7, "purpose": "recover"}
    assert "secret" not in token


def _flip_signature(token: str) -> str:
    """Change the signature's first character: its last one may only carry padding bits."""
    payload, signature = token.rsplit(".", 1)
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _flip_signature(t),  # signature changed
        lambda t: _issue(43).split(".")[0] + "." + ".".join(t.split(".")[1:]),  # payload swapped
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_tampered_token_is_invalid(tamper) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LinkInvalid):
        _read(tamper(_issue(42)))


def test_token_signed_with_another_key_is_invalid() -> None:
    with pytest.raises(LinkInvalid):
        _read(_issue(42, secret="other" * 10))


def test_token_for_another_purpose_is_invalid() -> None:
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer(SECRET, salt="processor.session").dumps(
        {"case": 42, "purpose": "recover"}
    )
    with pytest.raises(LinkInvalid):
        _read(forged)


def test_link_expires_after_the_ttl() -> None:
    with freeze_time("2026-11-30 12:00:00") as frozen:
        token = _issue(42)
        frozen.move_to("2026-12-07 11:59:59")
        assert _read(token) == 42
        frozen.move_to("2026-12-07 12:00:00")
        assert _read(token) == 42
        frozen.move_to("2026-12-07 12:00:01")
        with pytest.raises(LinkExpired) as expired:
            _read(token)
    assert expired.value.case_id == 42
    assert expired.value.issued_at.isoformat().startswith("2026-11-30T12:00:00")


def test_expired_token_that_was_tampered_is_invalid_not_expired() -> None:
    with freeze_time("2026-11-30 12:00:00") as frozen:
        token = _issue(42)
        frozen.move_to("2026-12-30 12:00:00")
        with pytest.raises(LinkInvalid):
            _read(_flip_signature(token))


def test_clock_argument_drives_expiry(clock) -> None:  # type: ignore[no-untyped-def]
    token = issue_link(
        secret_key=SECRET, public_base_url="http://x", case_id=5, ttl=TTL, clock=clock
    ).token
    clock.advance(days=7, seconds=1)
    with pytest.raises(LinkExpired):
        read_link(token, secret_key=SECRET, ttl=TTL, clock=clock)
    # A longer TTL on reading (settings changed) is honoured.
    assert read_link(token, secret_key=SECRET, ttl=timedelta(days=8), clock=clock) == 5
