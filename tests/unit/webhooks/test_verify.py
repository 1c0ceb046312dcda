"""Signature verification: real headers from stripe-python's signer, never a patched verifier."""

from __future__ import annotations

import time

import pytest
from freezegun import freeze_time

from processor.errors import SignatureInvalid
from processor.webhooks.verify import verify_signature
from tests.fixtures.events import body_of, payment_intent, signature, stripe_event

OLD = "whsec_old_secret_0123456789"
NEW = "whsec_new_secret_9876543210"
TOLERANCE = 300


@pytest.fixture
def payload() -> str:
    return body_of(stripe_event("payment_intent.succeeded", payment_intent()))


def verify(payload: str, header: str | None, secrets: tuple[str, ...] = (NEW,)) -> int:
    return verify_signature(payload, header, secrets, tolerance=TOLERANCE, now=time.time())


def test_a_good_signature_names_the_secret_that_matched(payload: str) -> None:
    assert verify(payload, signature(payload, NEW)) == 0


def test_during_rotation_either_secret_is_accepted_and_told_apart(payload: str) -> None:
    assert verify(payload, signature(payload, OLD), (NEW, OLD)) == 1
    assert verify(payload, signature(payload, NEW), (NEW, OLD)) == 0


def test_a_header_with_one_v1_per_active_secret_is_accepted(payload: str) -> None:
    stamp = int(time.time())
    old = signature(payload, OLD, stamp).split(",")[1]
    header = f"{signature(payload, NEW, stamp)},{old}"
    assert verify(payload, header, (OLD,)) == 0


def test_the_wrong_secret_is_refused(payload: str) -> None:
    with pytest.raises(SignatureInvalid, match="no signature matches"):
        verify(payload, signature(payload, OLD))


def test_a_tampered_body_is_refused(payload: str) -> None:
    header = signature(payload, NEW)
    with pytest.raises(SignatureInvalid, match="no signature matches"):
        verify(payload.replace("2000", "2001"), header)


def test_a_v0_signature_alone_is_refused(payload: str) -> None:
    stamp = int(time.time())
    v0 = signature(payload, NEW, stamp).split(",")[1].replace("v1=", "v0=")
    with pytest.raises(SignatureInvalid, match="no v1 signature"):
        verify(payload, f"t={stamp},{v0}")


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(payload: str, header: str | None) -> None:
    with pytest.raises(SignatureInvalid, match="missing"):
        verify(payload, header)


@pytest.mark.parametrize("header", ["garbage", "t=abc,v1=00", "v1=abcdef", "t=,v1=1"])
def test_a_garbled_header_is_refused(payload: str, header: str) -> None:
    with pytest.raises(SignatureInvalid, match="malformed"):
        verify(payload, header)


def test_a_stale_timestamp_is_refused_even_with_a_valid_signature(payload: str) -> None:
    header = signature(payload, NEW, int(time.time()) - TOLERANCE - 5)
    with pytest.raises(SignatureInvalid, match="too old"):
        verify(payload, header)


def test_a_timestamp_too_far_in_the_future_is_refused(payload: str) -> None:
    header = signature(payload, NEW, int(time.time()) + TOLERANCE + 5)
    with pytest.raises(SignatureInvalid, match="in the future"):
        verify(payload, header)


def test_the_tolerance_window_follows_the_clock(payload: str) -> None:
    with freeze_time("2026-11-30 12:00:00") as frozen:
        header = signature(payload, NEW)
        frozen.tick(TOLERANCE - 1)
        assert verify(payload, header) == 0
        frozen.tick(2)
        with pytest.raises(SignatureInvalid, match="too old"):
            verify(payload, header)
