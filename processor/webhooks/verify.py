"""Verify `Stripe-Signature` with stripe-python, against every configured secret (rotation).

stripe-python only refuses timestamps older than the tolerance; this module also refuses
timestamps too far in the future (a replay with a forged clock), reads the header once to give
a short reason, and reports which secret matched so operators can tell when the old one retires.
"""

from __future__ import annotations

from collections.abc import Sequence

from stripe import SignatureVerificationError, WebhookSignature

from processor.errors import PayloadInvalid, SignatureInvalid

SIGNATURE_SCHEME = "v1"

Signed = tuple[str, int]  # a body whose signature checked out, and the signing secret's index


def signature_timestamp(header: str | None) -> int:
    """The `t=` of a `Stripe-Signature` header, refusing what stripe-python would refuse."""
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    timestamp: int | None = None
    has_scheme = False
    for item in header.split(","):
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "t" and timestamp is None:
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureInvalid("malformed Stripe-Signature header") from None
        elif key == SIGNATURE_SCHEME and value:
            has_scheme = True
    if timestamp is None:
        raise SignatureInvalid("malformed Stripe-Signature header")
    if not has_scheme:
        raise SignatureInvalid("no v1 signature in Stripe-Signature header")
    return timestamp


def verify_signature(
    payload: str,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: float,
) -> int:
    """Return the index in `secrets` of the secret that signed `payload`, or raise.

    `payload` is the raw body decoded as UTF-8 (the signature covers exactly those bytes);
    `now` is the receiver's clock as a unix time.
    """
    timestamp = signature_timestamp(header)
    if timestamp < now - tolerance:
        raise SignatureInvalid("timestamp outside the tolerance window (too old)")
    if timestamp > now + tolerance:
        raise SignatureInvalid("timestamp outside the tolerance window (in the future)")
    last_error: SignatureVerificationError | None = None
    for index, secret in enumerate(secrets):
        try:
            WebhookSignature.verify_header(payload, header, secret, tolerance)
        except SignatureVerificationError as exc:
            last_error = exc
            continue
        return index
    raise SignatureInvalid("no signature matches a configured webhook secret") from last_error


def check_signature(
    body: bytes, signature_header: str | None, secrets: Sequence[str], tolerance: int, now: float
) -> Signed:
    """The body as text and the index of the secret that signed it, or raise the refusal."""
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadInvalid("body is not UTF-8 text") from None
    secret_index = verify_signature(
        payload, signature_header, secrets, tolerance=tolerance, now=now
    )
    return payload, secret_index
