"""Recovery emails from the packaged Jinja2 templates: subject, plain text and HTML.

HTML is autoescaped; names and amounts reach the text part verbatim. Amounts are formatted by
babel for the reader's locale with the currency's real exponent (JPY has no minor unit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from babel.dates import format_date, format_time
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from processor.recovery.cases import INITIAL_NOTIFICATION, REMINDER_NOTIFICATION
from processor.recovery.money import format_money
from processor.recovery.page import FRESH_LINK_KIND
from processor.recovery.recipients import SUPPORTED_LOCALES
from processor.recovery.summary import MethodOnFile

# The notification kinds the outbox holds; each has its templates.
PURPOSES = (INITIAL_NOTIFICATION, REMINDER_NOTIFICATION, FRESH_LINK_KIND)
CASE_KINDS = ("authentication_required", "payment_method_required")
BRAND_LABELS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "jcb": "JCB",
    "discover": "Discover",
    "diners": "Diners Club",
    "unionpay": "UnionPay",
    "cartes_bancaires": "Cartes Bancaires",
}
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RecoveryEmail:
    """Everything one recovery email says."""

    purpose: str
    case_kind: str
    locale: str
    merchant: str
    customer_name: str | None
    amount: int
    currency: str
    link: str
    link_expires_at: datetime
    method: MethodOnFile | None = None
    decline_code: str | None = None


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    return Environment(
        loader=PackageLoader("processor.notifier", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def render_email(email: RecoveryEmail) -> EmailContent:
    """Subject, text and HTML of one email, in the locale it names."""
    if email.purpose not in PURPOSES:
        raise ValueError(f"unknown email purpose {email.purpose!r}")
    if email.case_kind not in CASE_KINDS:
        raise ValueError(f"unknown case kind {email.case_kind!r}")
    locale = email.locale if email.locale in SUPPORTED_LOCALES else "en"
    env = template_environment()
    values = {
        "purpose": email.purpose,
        "locale": locale,
        "merchant": one_line(email.merchant),
        "name": one_line(email.customer_name) if email.customer_name else None,
        "amount": format_money(email.amount, email.currency, locale),
        "link": email.link,
        "expires": _format_moment(email.link_expires_at, locale),
        "method": _method_values(email.method),
        "decline_code": email.decline_code,
    }
    text_template = env.get_template(f"{locale}/{email.case_kind}.txt")
    module = text_template.make_module(values)
    # The template's `{% set subject = ... %}`, which Jinja exports as a module attribute.
    subject = one_line(str(vars(module)["subject"]))
    text = _tidy_text(str(module))
    html = env.get_template(f"{locale}/{email.case_kind}.html").render(values, subject=subject)
    return EmailContent(subject=subject, text=text, html=html)


def one_line(value: str) -> str:
    """Collapse CR/LF and surrounding space: names and subjects must stay on one line."""
    return _LINE_BREAKS.sub(" ", value).strip()


def _method_values(method: MethodOnFile | None) -> dict[str, str] | None:
    if method is None or not method.last4:
        return None
    if method.type == "sepa_debit":
        label = "SEPA"
    else:
        brand = (method.card_brand or "").lower()
        label = BRAND_LABELS.get(brand, brand.title() or "card")
    return {"label": label, "last4": method.last4}


def _format_moment(moment: datetime, locale: str) -> str:
    """ "December 7, 2026 9:30 AM UTC" / "2026年12月7日 9:30 UTC": no seconds, zone spelt out."""
    utc = moment.astimezone(UTC)
    day = format_date(utc, "long", locale=locale)
    return f"{day} {format_time(utc, 'short', tzinfo=UTC, locale=locale)} UTC"


def _tidy_text(text: str) -> str:
    # Template conditionals leave runs of blank lines; mail readers show them literally.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
