"""One recovery email as an RFC 5322 message, built so that no value can add a header.

Names and subjects are folded onto one line, addresses are checked before they reach a header,
and headers are set through `email.headerregistry`, which encodes non-ASCII text itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses

from processor.errors import DeliveryError
from processor.notifier.render import EmailContent, one_line

# Deliberately strict: one @, no spaces, quotes, angle brackets or control characters.
_ADDRESS = re.compile(r"^[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+@[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+$")


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
        return cls(name=one_line(name), address=address)


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
) -> EmailMessage:
    address = checked_address(recipient_address)
    local_part, domain = address.rsplit("@", 1)
    message = EmailMessage()
    message["From"] = Address(display_name=sender.name, addr_spec=sender.address)
    message["To"] = Address(
        display_name=one_line(recipient_name or ""), username=local_part, domain=domain
    )
    message["Subject"] = one_line(content.subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # Tells auto-responders (vacation replies) not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    # After the parts exist: making the alternative moves Content-* headers into the first part.
    message["Content-Language"] = locale
    return message
