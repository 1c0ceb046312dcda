"""SMTP delivery with smtplib: SMTP_URL is smtp://[user:pass@]host[:port][?starttls=true]
(plain, or upgraded with STARTTLS) or smtps://… (TLS from the first byte).

A `MailBatch` is one connection for one batch of emails, opened at the first send. Failures
become `DeliveryError`: `retryable` for the connection, 4xx answers and timeouts; not for a
5xx refusal of this one message, which no retry will change.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from processor.errors import DeliveryError
from processor.notifier.message import OutgoingEmail

DEFAULT_TIMEOUT_SECONDS = 15.0
# After this many failed connects in one batch the rest of the batch fails fast.
CONNECT_ATTEMPTS_PER_BATCH = 2


class MailBatch(Protocol):
    def send(self, email: OutgoingEmail, *, sender: str) -> None: ...


class Mailer(Protocol):
    def batch(self) -> AbstractContextManager[MailBatch]: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a traceback or log
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:pass@host:587?starttls=true")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        implicit_tls = parts.scheme == "smtps"
        starttls = query.get("starttls", "false").lower() in {"1", "true", "yes", "on"}
        port = parts.port or (465 if implicit_tls else 587 if starttls else 25)
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit_tls,
            starttls=starttls and not implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(query.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        )

    def describe(self) -> str:
        """For logs: where we send, never the password."""
        mode = "smtps" if self.implicit_tls else "smtp+starttls" if self.starttls else "smtp"
        return f"{mode}://{self.host}:{self.port}"


class SmtpMailer:
    """Opens one SMTP connection per batch; `tls_context` lets tests trust their own CA."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self._tls_context = tls_context or ssl.create_default_context()

    @classmethod
    def from_url(cls, url: str, *, tls_context: ssl.SSLContext | None = None) -> SmtpMailer:
        return cls(SmtpConfig.from_url(url), tls_context=tls_context)

    def batch(self) -> SmtpBatch:
        return SmtpBatch(self)

    def connect(self) -> smtplib.SMTP:
        config = self.config
        try:
            client: smtplib.SMTP
            if config.implicit_tls:
                client = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout, context=self._tls_context
                )
            else:
                client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            try:
                client.ehlo()
                if config.starttls:
                    client.starttls(context=self._tls_context)
                    client.ehlo()
                if config.username:
                    client.login(config.username, config.password or "")
            except BaseException:
                _close_quietly(client)
                raise
        except (smtplib.SMTPException, OSError) as exc:
            raise connection_error(exc, config) from exc
        return client


class SmtpBatch:
    """One connection shared by the emails of a batch; reconnects once if it drops."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer
        self._client: smtplib.SMTP | None = None
        self._connects_left = CONNECT_ATTEMPTS_PER_BATCH
        self._last_failure: DeliveryError | None = None

    def __enter__(self) -> SmtpBatch:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                _close_quietly(self._client)
            self._client = None

    def send(self, email: OutgoingEmail, *, sender: str) -> None:
        recipient = email.recipient
        # Headers are RFC 2047-encoded; only an address outside ASCII needs the extension.
        options = [] if sender.isascii() and recipient.isascii() else ["SMTPUTF8"]
        client = self._connected()
        try:
            refused = client.sendmail(sender, [recipient], email.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused: {_describe_codes(exc.recipients)}",
                retryable=all(400 <= code < 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                # "Service not available, closing transmission channel": this connection is done.
                self._drop(client)
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}",
                retryable=exc.smtp_code < 500,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop(client)
            self._last_failure = connection_error(exc, self._mailer.config)
            raise self._last_failure from exc
        if refused:
            raise DeliveryError(f"recipient refused: {_describe_codes(refused)}", retryable=True)

    def _connected(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        if self._connects_left <= 0:
            reason = self._last_failure or "the SMTP connection was lost"
            raise DeliveryError(f"not attempted: {reason}", retryable=True)
        self._connects_left -= 1
        try:
            self._client = self._mailer.connect()
        except DeliveryError as exc:
            self._last_failure = exc
            raise
        return self._client

    def _drop(self, client: smtplib.SMTP) -> None:
        _close_quietly(client)
        self._client = None


def connection_error(exc: BaseException, config: SmtpConfig) -> DeliveryError:
    """A failure of the connection rather than of one message: always worth another try."""
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
    elif isinstance(exc, socket.timeout | TimeoutError):
        detail = "timed out"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return DeliveryError(f"{config.describe()} unavailable ({detail})", retryable=True)


def _describe_codes(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{code} {_text(text)}" for code, text in recipients.values())


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _close_quietly(client: smtplib.SMTP) -> None:
    with suppress(OSError):
        client.close()
