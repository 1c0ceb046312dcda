"""What the confirm endpoint refuses before it talks to Stripe, and the page's headers."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from processor.config import Settings
from processor.web.security import content_security_policy
from processor.web.session import COOKIE_NAME
from tests.fixtures.app import LiveApp
from tests.integration.checkout.helpers import attempts, confirm, confirmation_token, sign_up


def _nothing_happened(live: LiveApp) -> None:
    assert attempts(live) == []
    assert not [e for e in live.sandbox.events if e["type"].startswith("setup_intent.")]


def test_no_session_is_401(live: LiveApp, browser_client: httpx.Client) -> None:
    answer = confirm(browser_client, confirmation_token(live))

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    _nothing_happened(live)


def _flip_signature(token: str) -> str:
    """Change the signature's first character: its last one may only carry padding bits."""
    payload, signature = token.rsplit(".", 1)
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


@pytest.mark.parametrize("forgery", ["foreign_key", "tampered", "unsigned"])
def test_a_forged_session_cookie_is_401(
    live: LiveApp, browser_client: httpx.Client, forgery: str
) -> None:
    with httpx.Client(base_url=live.url, timeout=15) as victim_browser:
        victim = sign_up(victim_browser, email="victim@example.com")
    genuine = URLSafeTimedSerializer(live.settings.secret_key, salt="processor.session.v1")
    cookie = {
        "foreign_key": URLSafeTimedSerializer("x" * 40, salt="processor.session.v1").dumps(
            {"customer": victim["id"]}
        ),
        "tampered": _flip_signature(genuine.dumps({"customer": "cus_someone"})),
        "unsigned": victim["id"],
    }[forgery]
    browser_client.cookies.set(COOKIE_NAME, cookie)

    answer = confirm(browser_client, confirmation_token(live))

    assert answer.status_code == 401
    assert browser_client.get("/customers/me").status_code == 401
    _nothing_happened(live)


def test_the_customer_never_comes_from_the_body(
    live: LiveApp, browser_client: httpx.Client
) -> None:
    with httpx.Client(base_url=live.url, timeout=15) as victim_browser:
        victim = sign_up(victim_browser, email="victim@example.com")
    answer = browser_client.post(
        "/create-confirm-intent",
        json={"confirmationTokenId": confirmation_token(live), "customer": victim["id"]},
    )
    assert answer.status_code == 401
    _nothing_happened(live)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"confirmationTokenId=ctoken_1"),
        ("text/plain", b'{"confirmationTokenId": "ctoken_1"}'),
        ("multipart/form-data; boundary=x", b"--x--"),
        (None, b'{"confirmationTokenId": "ctoken_1"}'),
    ],
)
def test_a_body_that_is_not_json_is_415(
    live: LiveApp, browser_client: httpx.Client, content_type: str | None, body: bytes
) -> None:
    sign_up(browser_client)
    headers = {"Content-Type": content_type} if content_type else {}
    answer = browser_client.post("/create-confirm-intent", content=body, headers=headers)

    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"
    _nothing_happened(live)


def test_an_oversized_body_is_413(live: LiveApp, browser_client: httpx.Client) -> None:
    sign_up(browser_client)
    padding = "x" * 9000
    declared = browser_client.post(
        "/create-confirm-intent", json={"confirmationTokenId": "ctoken_1", "padding": padding}
    )

    def chunks() -> Iterator[bytes]:
        yield b'{"confirmationTokenId": "ctoken_1", "padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    chunked = browser_client.post(
        "/create-confirm-intent", content=chunks(), headers={"Content-Type": "application/json"}
    )

    for answer in (declared, chunked):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
    _nothing_happened(live)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://127.0.0.1:1",
        "http://localhost",
        "http://[::1",
        "http://127.0.0.1:99999",
    ],
)
def test_a_foreign_origin_is_403(live: LiveApp, browser_client: httpx.Client, origin: str) -> None:
    sign_up(browser_client)
    answer = browser_client.post(
        "/create-confirm-intent",
        json={"confirmationTokenId": confirmation_token(live)},
        headers={"Origin": origin},
    )

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    _nothing_happened(live)
    refused_sign_up = httpx.post(
        f"{live.url}/customers",
        json={"email": "x@example.com", "name": "X"},
        headers={"Origin": origin},
    )
    assert refused_sign_up.status_code == 403


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"[]", "malformed_json"),
        (b'"ctoken_1"', "malformed_json"),
        (b"{}", "invalid_confirmation_token"),
        (b'{"confirmationTokenId": 5}', "invalid_confirmation_token"),
        (b'{"confirmationTokenId": "pm_card_visa"}', "invalid_confirmation_token"),
        (b'{"confirmationTokenId": "ctoken_../../v1/customers"}', "invalid_confirmation_token"),
    ],
)
def test_a_malformed_body_is_400(
    live: LiveApp, browser_client: httpx.Client, body: bytes, code: str
) -> None:
    sign_up(browser_client)
    answer = browser_client.post(
        "/create-confirm-intent", content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    _nothing_happened(live)


def test_config_names_the_stand_in_in_sandbox_mode(live: LiveApp) -> None:
    answer = httpx.get(f"{live.url}/config")

    assert answer.json() == {
        "locale": "en",
        "publishableKey": "pk_test_sandbox",
        "stripeJsUrl": f"{live.url}/sandbox/stripe/v3/stripe.js",
        "currency": "usd",
        "sandbox": True,
        "merchantName": "Example Shop",
        "captcha": None,
    }
    assert httpx.get(answer.json()["stripeJsUrl"]).status_code == 200


class _InlineFinder(HTMLParser):
    """Collects everything a CSP without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            if not names.get("src"):
                self.inline.append("inline <script>")
            else:
                self.scripts.append(str(names["src"]))
        if tag == "style":
            self.inline.append("<style> element")
        if tag == "link" and names.get("rel") == "stylesheet":
            self.styles.append(str(names["href"]))
        for name, _value in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{name}= on <{tag}>")


def test_the_page_is_served_with_a_strict_policy_and_nothing_inline(live: LiveApp) -> None:
    answer = httpx.get(f"{live.url}/")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";")
    )
    for directive in ("script-src", "style-src", "connect-src", "default-src"):
        assert "'unsafe-inline'" not in policy[directive]
        assert "'unsafe-eval'" not in policy[directive]
    assert live.url in policy["script-src"].split()
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert answer.headers["x-content-type-options"] == "nosniff"

    page = _InlineFinder()
    page.feed(answer.text)
    assert page.inline == []
    for asset in page.scripts + page.styles:
        assert httpx.get(f"{live.url}{asset}").status_code == 200, asset


def test_with_real_keys_the_policy_allows_stripe_and_nothing_else() -> None:
    policy = dict(
        part.strip().split(" ", 1)
        for part in content_security_policy(
            Settings(sandbox=False, public_base_url="https://shop.example")
        ).split(";")
    )
    assert policy["script-src"].split() == ["'self'", "https://js.stripe.com"]
    assert set(policy["frame-src"].split()) == {"https://js.stripe.com", "https://hooks.stripe.com"}
    assert "https://api.stripe.com" in policy["connect-src"].split()
