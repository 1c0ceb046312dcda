"""SMTP_URL: smtp:// (optionally STARTTLS) or smtps://, with credentials in the URL."""

from __future__ import annotations

import pytest

from processor.notifier.smtp import SmtpConfig


def test_plain() -> None:
    config = SmtpConfig.from_url("smtp://127.0.0.1:2525")
    assert (config.host, config.port, config.starttls, config.implicit_tls) == (
        "127.0.0.1",
        2525,
        False,
        False,
    )
    assert config.username is None


def test_starttls_with_login() -> None:
    config = SmtpConfig.from_url("smtp://user%40x:p%40ss%2Fword@mail.example?starttls=true")
    assert config.starttls and not config.implicit_tls
    assert config.port == 587
    assert (config.username, config.password) == ("user@x", "p@ss/word")
    assert "p@ss" not in config.describe()
    assert "p@ss" not in repr(config)


def test_smtps() -> None:
    config = SmtpConfig.from_url("smtps://u:p@mail.example")
    assert config.implicit_tls and not config.starttls and config.port == 465


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        SmtpConfig.from_url(url)
