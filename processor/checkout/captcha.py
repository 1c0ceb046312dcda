"""The CAPTCHA on sign-up: a server-side check of the token the page's widget produced.

Cloudflare Turnstile and hCaptcha share one protocol (a form POST of secret, response and
remote address to the provider's `siteverify`, answering `{"success": ...}`), so one class
serves both. The sandbox verifier stands in offline. A provider that cannot be reached
refuses the sign-up: the check fails closed.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from processor.config import Settings
from processor.errors import InvalidInput, ProcessorError

log = logging.getLogger(__name__)

SITEVERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
}
# What the pages load to draw each provider's widget (also allowed by the CSP).
WIDGET_SCRIPTS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit",
    "hcaptcha": "https://js.hcaptcha.com/1/api.js?render=explicit",
}
# Where each provider's widget loads from, frames and talks to (the pages' CSP allows them).
CAPTCHA_ORIGINS = {
    "turnstile": ("https://challenges.cloudflare.com",),
    "hcaptcha": ("https://hcaptcha.com", "https://*.hcaptcha.com"),
}
SANDBOX_PASS = "sandbox-captcha-pass"  # noqa: S105
TIMEOUT_SECONDS = 5.0


class CaptchaUnavailable(ProcessorError):
    code = "captcha_unavailable"


class CaptchaVerifier(Protocol):
    def verify(self, token: str, remote_address: str) -> bool: ...


class SiteVerify:
    """Asks the provider whether `token` was solved (Turnstile and hCaptcha alike)."""

    def __init__(self, url: str, secret: str, client: httpx.Client | None = None) -> None:
        self.url = url
        self.secret = secret
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS)

    def verify(self, token: str, remote_address: str) -> bool:
        form = {"secret": self.secret, "response": token, "remoteip": remote_address}
        try:
            answer = self.client.post(self.url, data=form)
            answer.raise_for_status()
            verdict = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("CAPTCHA provider unreachable: %s", type(exc).__name__)
            raise CaptchaUnavailable(
                "We could not check the challenge. Please try again in a moment."
            ) from exc
        return isinstance(verdict, dict) and verdict.get("success") is True


class SandboxVerifier:
    """Offline stand-in: the sandbox page's checkbox yields the one token it accepts."""

    def verify(self, token: str, remote_address: str) -> bool:
        return token == SANDBOX_PASS


def build_verifier(settings: Settings) -> CaptchaVerifier | None:
    """The verifier CAPTCHA_PROVIDER names, or None when sign-up has no CAPTCHA."""
    provider = settings.captcha_provider
    if provider is None or provider == "off":
        return None
    if provider == "sandbox":
        return SandboxVerifier()
    return SiteVerify(SITEVERIFY_URLS[provider], settings.captcha_secret or "")


def require_solved(verifier: CaptchaVerifier | None, token: object, remote_address: str) -> None:
    """Raise `InvalidInput` unless the sign-up carries a solved challenge (when one is asked)."""
    if verifier is None:
        return
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidInput(
            "Complete the challenge before signing up.", field="captcha", code="captcha_required"
        )
    if not verifier.verify(token, remote_address):
        raise InvalidInput(
            "The challenge was not accepted. Please try it again.",
            field="captcha",
            code="captcha_failed",
        )
