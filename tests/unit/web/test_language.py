"""Which language a page speaks: the page's switch, then Accept-Language, then the stored one."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from processor.web.language import page_language


def _request(accept: str | None = None, cookie: str | None = None) -> Request:
    headers = []
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("accept", "cookie", "stored", "spoken"),
    [
        ("ja-JP,ja;q=0.9,en;q=0.8", None, None, "ja"),
        ("en-US,en;q=0.9", None, "ja", "en"),  # the browser's language comes first
        ("fr-FR,de;q=0.5", None, "ja-JP", "ja"),  # none we speak: the stored one
        ("fr-FR,ja;q=0.5", None, "en", "ja"),  # a later choice of the browser still wins
        ("ja", "lang=en", "ja", "en"),  # the switch on the page wins over both
        ("en", "lang=xx", "ja", "en"),  # an unknown switch value is ignored
        (None, None, None, "en"),
    ],
)
def test_the_page_language(
    accept: str | None, cookie: str | None, stored: str | None, spoken: str
) -> None:
    assert page_language(_request(accept, cookie), stored) == spoken
