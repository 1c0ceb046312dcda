"""Which language a page speaks: the switch on the page (the `lang` cookie), then the
browser's Accept-Language, then the customer's stored locale; English otherwise."""

from __future__ import annotations

from starlette.requests import Request

from processor.recovery.recipients import SUPPORTED_LOCALES, choose_locale

LANGUAGE_COOKIE = "lang"


def accepted_languages(request: Request) -> list[str]:
    """Accept-Language's tags in the order sent (browsers list them by preference)."""
    header = request.headers.get("accept-language", "")
    return [part.split(";")[0].strip() for part in header.split(",") if part.strip()]


def page_language(request: Request, stored: str | None) -> str:
    """`en` or `ja` for this request; `stored` is the customer's preferred locale, if known."""
    switched = request.cookies.get(LANGUAGE_COOKIE)
    chosen = switched if switched in SUPPORTED_LOCALES else None
    return choose_locale([chosen, *accepted_languages(request), stored])
