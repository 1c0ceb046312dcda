"""The sign-up CAPTCHA's server side: the siteverify conversation, and failing closed."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from processor.checkout.captcha import (
    SITEVERIFY_URLS,
    CaptchaUnavailable,
    SandboxVerifier,
    SiteVerify,
    build_verifier,
    require_solved,
)
from processor.config import Settings
from processor.errors import InvalidInput
from processor.web.security import content_security_policy


def _provider(answer: httpx.Response, seen: list[dict[str, list[str]]]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url == SITEVERIFY_URLS["turnstile"]
        seen.append(parse_qs(request.content.decode()))
        return answer

    return httpx.Client(transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(
    ("answer", "solved"),
    [
        (httpx.Response(200, json={"success": True}), True),
        (httpx.Response(200, json={"success": False, "error-codes": ["invalid-input"]}), False),
        (httpx.Response(200, json={"success": "yes"}), False),
    ],
)
def test_siteverify_sends_secret_token_and_address(answer: httpx.Response, solved: bool) -> None:
    seen: list[dict[str, list[str]]] = []
    verifier = SiteVerify(SITEVERIFY_URLS["turnstile"], "0x-secret", _provider(answer, seen))
    assert verifier.verify("widget-token", "203.0.113.5") is solved
    assert seen == [
        {"secret": ["0x-secret"], "response": ["widget-token"], "remoteip": ["203.0.113.5"]}
    ]


@pytest.mark.parametrize(
    "answer", [httpx.Response(500, text="down"), httpx.Response(200, text="<html>")]
)
def test_a_provider_that_fails_refuses_the_sign_up(answer: httpx.Response) -> None:
    verifier = SiteVerify(SITEVERIFY_URLS["turnstile"], "0x-secret", _provider(answer, []))
    with pytest.raises(CaptchaUnavailable):
        verifier.verify("widget-token", "203.0.113.5")


def test_require_solved_names_a_missing_and_a_failed_challenge() -> None:
    verifier = SandboxVerifier()
    require_solved(None, None, "203.0.113.5")  # no CAPTCHA configured: nothing to check
    with pytest.raises(InvalidInput) as missing:
        require_solved(verifier, None, "203.0.113.5")
    with pytest.raises(InvalidInput) as failed:
        require_solved(verifier, "made-up", "203.0.113.5")
    assert (missing.value.code, failed.value.code) == ("captcha_required", "captcha_failed")
    require_solved(verifier, "sandbox-captcha-pass", "203.0.113.5")


def test_the_provider_setting_picks_the_verifier_and_opens_the_pages_to_its_widget() -> None:
    assert build_verifier(Settings()) is None
    assert isinstance(build_verifier(Settings(captcha_provider="sandbox")), SandboxVerifier)
    hcaptcha = Settings(captcha_provider="hcaptcha", captcha_secret="s", captcha_site_key="k")
    verifier = build_verifier(hcaptcha)
    assert isinstance(verifier, SiteVerify) and verifier.url == SITEVERIFY_URLS["hcaptcha"]
    policy = content_security_policy(Settings(captcha_provider="turnstile"))
    for directive in ("script-src", "frame-src"):
        sources = next(d for d in policy.split("; ") if d.startswith(directive))
        assert "https://challenges.cloudflare.com" in sources
    assert "cloudflare" not in content_security_policy(Settings())
