"""The signed session cookie that ties a browser to the Customer it signed up as.

The cookie carries only the Customer id, signed with SECRET_KEY (itsdangerous): a value that
was not signed by us, or is too old, reads as "no session". It is HttpOnly, SameSite=Lax,
and Secure whenever PUBLIC_BASE_URL is https.
"""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from processor.config import Settings

COOKIE_NAME = "processor_session"
SESSION_LIFETIME = timedelta(days=30)
_SALT = "processor.session.v1"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def session_customer_id(request: Request, settings: Settings) -> str | None:
    """The Customer id this browser signed up as, or None without a valid session."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        payload = _serializer(settings).loads(raw, max_age=int(SESSION_LIFETIME.total_seconds()))
    except BadSignature:  # also covers SignatureExpired
        return None
    customer_id = payload.get("customer") if isinstance(payload, dict) else None
    return customer_id if isinstance(customer_id, str) and customer_id else None


def start_session(response: Response, settings: Settings, customer_id: str) -> None:
    """Set the cookie that names `customer_id` for the rest of this browser's session."""
    response.set_cookie(
        COOKIE_NAME,
        _serializer(settings).dumps({"customer": customer_id}),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
