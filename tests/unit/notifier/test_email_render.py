"""Recovery emails in English and Japanese, both kinds and every purpose, text and HTML."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from processor.notifier.message import Sender, build_message, message_id_for
from processor.notifier.render import CASE_KINDS, PURPOSES, RecoveryEmail, render_email
from processor.recovery.summary import MethodOnFile

LINK = "https://shop.example/recover/eyJjYXNlIjo0Mn0.abc.def"
VISA = MethodOnFile(type="card", card_brand="visa", card_last4="3184", sepa_last4=None)


def _email(**overrides: object) -> RecoveryEmail:
    values: dict[str, object] = {
        "purpose": "initial",
        "case_kind": "authentication_required",
        "locale": "en",
        "merchant": "Example Shop",
        "customer_name": "Ada Lovelace",
        "amount": 1999,
        "currency": "usd",
        "link": LINK,
        "link_expires_at": datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
        "method": VISA,
        "decline_code": None,
    }
    values.update(overrides)
    return RecoveryEmail(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("locale", ["en", "ja"])
@pytest.mark.parametrize("case_kind", CASE_KINDS)
@pytest.mark.parametrize("purpose", PURPOSES)
def test_every_email_has_subject_text_html_and_the_link(
    locale: str, case_kind: str, purpose: str
) -> None:
    content = render_email(_email(locale=locale, case_kind=case_kind, purpose=purpose))
    assert content.subject and "\n" not in content.subject
    assert "$19.99" in content.subject
    assert LINK in content.text
    assert f'href="{LINK}"' in content.html
    assert f'<html lang="{locale}">' in content.html
    assert "Example Shop" in content.text and "Example Shop" in content.html
    assert "\n\n\n" not in content.text


def test_english_authentication_email() -> None:
    content = render_email(_email())
    assert content.subject == "Please confirm your payment of $19.99 to Example Shop"
    assert content.text.startswith("Hello Ada Lovelace,\n")
    assert "your Visa ending in 3184" in content.text
    assert "December 7, 2026" in content.text and "9:30" in content.text
    assert "Confirm $19.99" in content.html


def test_english_new_method_email_names_the_reason() -> None:
    content = render_email(
        _email(case_kind="payment_method_required", decline_code="insufficient_funds")
    )
    assert content.subject == "Your payment of $19.99 to Example Shop did not go through"
    assert "the card has insufficient funds" in content.text
    assert "Please choose another way to pay." in content.text


def test_reminders_say_so() -> None:
    assert render_email(_email(purpose="reminder")).subject.startswith("Reminder:")
    ja = render_email(_email(purpose="reminder", locale="ja"))
    assert ja.subject.startswith("【再度のお願い】")


def test_japanese_with_a_zero_decimal_currency() -> None:
    content = render_email(
        _email(
            locale="ja",
            currency="jpy",
            amount=1999,
            case_kind="payment_method_required",
            decline_code="insufficient_funds",
        )
    )
    assert content.subject == "【Example Shop】お支払い（￥1,999）が完了しませんでした"  # noqa: RUF001
    assert content.text.startswith("Ada Lovelace 様\n")
    assert "￥1,999" in content.text and "19.99" not in content.text
    assert "残高が不足していた" in content.text
    assert "Visa（末尾 3184）" in content.text  # noqa: RUF001
    assert "2026年12月7日" in content.text
    assert "￥1,999 を支払う" in content.html


def test_japanese_without_a_name() -> None:
    content = render_email(_email(locale="ja", customer_name=None))
    assert content.text.startswith("お客様\n")


def test_unknown_locale_falls_back_to_english() -> None:
    assert render_email(_email(locale="fr")).subject.startswith("Please confirm")


def test_html_escapes_names_text_keeps_them() -> None:
    content = render_email(_email(customer_name='<script>alert("x")</script>'))
    assert "<script>" not in content.html
    assert "&lt;script&gt;" in content.html
    assert '<script>alert("x")</script>' in content.text


def test_no_method_on_file() -> None:
    content = render_email(_email(method=None))
    assert "your saved payment method" in content.text


def _sent_bytes(name: str, subject_merchant: str = "Example Shop") -> bytes:
    content = render_email(_email(customer_name=name, merchant=subject_merchant))
    sender = Sender.parse("Example Shop <payments@example.com>")
    message = build_message(
        content,
        sender=sender,
        recipient_address="ada@example.com",
        recipient_name=name,
        message_id=message_id_for(12, 34, sender.domain),
        date=datetime(2026, 11, 30, 12, tzinfo=UTC),
        locale="en",
    )
    return message.data


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: attacker@evil.example",
        "Eve\nBcc: attacker@evil.example",
        "Eve\rBcc: attacker@evil.example",
        "Eve\r\n\r\nInjected body",
    ],
)
def test_line_breaks_in_a_name_inject_no_header(name: str) -> None:
    raw = _sent_bytes(name, subject_merchant="Shop\r\nBcc: attacker@evil.example")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert [key.lower() for key in parsed].count("to") == 1
    assert parsed["To"].addresses[0].addr_spec == "ada@example.com"  # type: ignore[union-attr]
    assert b"\r\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]


def test_headers_of_a_recovery_email() -> None:
    parsed = message_from_bytes(_sent_bytes("Ada"), policy=policy.default)
    assert parsed["Message-ID"] == "<notification-12.34@example.com>"
    assert parsed["From"] == "Example Shop <payments@example.com>"
    assert parsed["To"] == "Ada <ada@example.com>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Content-Language"] == "en"
    assert parsed.get_body(("plain",)) is not None and parsed.get_body(("html",)) is not None


def test_japanese_subject_is_encoded_and_round_trips() -> None:
    content = render_email(_email(locale="ja", currency="jpy"))
    sender = Sender.parse("Example Shop <payments@example.com>")
    raw = build_message(
        content,
        sender=sender,
        recipient_address="hanako@example.jp",
        recipient_name="山田 花子",
        message_id="<x@example.com>",
        date=datetime(2026, 11, 30, tzinfo=UTC),
        locale="ja",
    ).data
    raw.decode("ascii")  # every header and part is 7-bit on the wire
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == content.subject
    assert parsed["To"].addresses[0].display_name == "山田 花子"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "address", ["ada@example.com\r\nBcc: x@evil.example", "not-an-address", "a b@example.com"]
)
def test_bad_recipient_address_is_a_permanent_failure(address: str) -> None:
    from processor.errors import DeliveryError

    sender = Sender.parse("Example Shop <payments@example.com>")
    with pytest.raises(DeliveryError) as failure:
        build_message(
            render_email(_email()),
            sender=sender,
            recipient_address=address,
            recipient_name=None,
            message_id="<x@example.com>",
            date=datetime(2026, 11, 30, tzinfo=UTC),
            locale="en",
        )
    assert failure.value.retryable is False


def test_a_header_block_that_is_not_as_built_is_refused() -> None:
    from processor.errors import DeliveryError
    from processor.notifier import message

    good = _sent_bytes("Ada")
    head, body = good.split(b"\r\n\r\n", 1)
    message.check_headers(good)  # what build_message makes passes
    for bad_head in (
        head + b"\r\nBcc: attacker@evil.example",
        head + b"\r\nTo: second@evil.example",
        head.replace(b"\r\nAuto-Submitted: auto-generated", b""),
    ):
        with pytest.raises(DeliveryError) as refused:
            message.check_headers(bad_head + b"\r\n\r\n" + body)
        assert refused.value.retryable is False
