"""One recovery email as the bytes that go over SMTP, built so that no value can add a header.

Free text (names, the subject) loses every control character before it nears a header,
addresses must pass a strict check, and non-ASCII text is encoded by `email.header` (RFC 2047).
The flattened header block is then read back: anything but the headers we set refuses the
email. The classic `email.mime` classes are used on purpose: the `EmailMessage` API parses and
refolds every header, which cost more than everything else a send does at hundreds a second.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, getaddresses
from typing import Any

from processor.errors import DeliveryError
from processor.notifier.render import EmailContent

# Deliberately strict: one @, no spaces, quotes, angle brackets or control characters.
_ADDRESS = re.compile(r"^[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+@[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+$")
# Every C0/C1 control character and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.MULTILINE)
EXPECTED_HEADERS = frozenset(
    {
        b"content-type",
        b"mime-version",
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"content-language",
        b"auto-submitted",
    }
)
_BOUNDARY_PREFIX = "=_recovery_"  # "=_" never starts a line of base64 or quoted-printable
_UTF8_BASE64 = Charset("utf-8")  # base64 bodies: safe whatever the text holds
_ASCII_QP = Charset("us-ascii")
_ASCII_QP.body_encoding = QP  # long ASCII lines (HTML) are folded safely too


@dataclass(frozen=True)
class Sender:
    """MAIL_FROM split into its parts; the domain also names our Message-IDs."""

    name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @classmethod
    def parse(cls, mail_from: str) -> Sender:
        parsed = getaddresses([mail_from])
        name, address = parsed[0] if len(parsed) == 1 else ("", "")
        if not _ADDRESS.match(address):
            raise ValueError(f"MAIL_FROM is not an address: {mail_from!r}")
        return cls(name=header_text(name), address=address)


@dataclass(frozen=True)
class OutgoingEmail:
    """What goes over the wire: the envelope's recipient and the message's bytes (CRLF)."""

    recipient: str
    message_id: str
    data: bytes


def header_text(value: str) -> str:
    """Free text fit for a header: control characters (CR and LF among them) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def message_id_for(notification_id: int, case_id: int, domain: str) -> str:
    """Stable across retries, so a message sent twice is recognised as one by mail systems."""
    return f"<notification-{notification_id}.{case_id}@{domain}>"


def checked_address(address: str) -> str:
    """The recipient's address, or a permanent `DeliveryError` if it cannot be a mailbox."""
    cleaned = address.strip()
    if not _ADDRESS.match(cleaned) or len(cleaned) > 320:
        raise DeliveryError("the recipient's address is not valid", retryable=False)
    return cleaned


def build_message(
    content: EmailContent,
    *,
    sender: Sender,
    recipient_address: str,
    recipient_name: str | None,
    message_id: str,
    date: datetime,
    locale: str,
) -> OutgoingEmail:
    address = checked_address(recipient_address)
    # A boundary that cannot occur in encoded bodies spares the generator its search for one.
    message = MIMEMultipart("alternative", boundary=_BOUNDARY_PREFIX + secrets.token_hex(12))
    message["From"] = _mailbox(sender.name, sender.address)
    message["To"] = _mailbox(recipient_name or "", address)
    # A Header object is what keeps a non-ASCII subject encoded; typeshed allows only str.
    message["Subject"] = _encoded(header_text(content.subject))  # type: ignore[assignment]
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Content-Language"] = locale
    # Tells auto-responders (vacation replies) not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.attach(_part(content.text, "plain"))
    message.attach(_part(content.html, "html"))
    data = message.as_bytes(policy=_WIRE)
    check_headers(data)
    return OutgoingEmail(recipient=address, message_id=message_id, data=data)


class _WirePolicy(Compat32):
    """CRLF line ends; short ASCII headers written as they are, not run through `Header`."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) + 2 <= 78
            and not _CONTROL.search(value)
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _WirePolicy(linesep="\r\n")


def _mailbox(name: str, address: str) -> str:
    # formataddr quotes specials and RFC 2047-encodes non-ASCII names.
    return formataddr((header_text(name), address), charset="utf-8")


def _encoded(text: str) -> str | Header:
    return text if text.isascii() else Header(text, "utf-8")


def _part(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _ASCII_QP if body.isascii() else _UTF8_BASE64)
    return part


def check_headers(data: bytes) -> None:
    """Defence in depth: the top-level header block holds exactly the headers set above."""
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [name.lower() for name in _HEADER_NAME.findall(head)]
    if len(names) != len(set(names)) or set(names) != EXPECTED_HEADERS:
        raise DeliveryError(
            "refused to send: the message headers are not as built", retryable=False
        )
