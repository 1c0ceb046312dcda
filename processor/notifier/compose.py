"""One recovery email, ready to send: a fresh link, the rendered text and HTML, the message.

Pure work on what the worker read: no database and no network here.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.clock import Clock
from processor.config import Settings
from processor.notifier.message import OutgoingEmail, Sender, build_message, message_id_for
from processor.notifier.render import RecoveryEmail, render_email
from processor.recovery.links import issue_link
from processor.recovery.outbox import ClaimedNotification
from processor.recovery.recipients import Recipient
from processor.recovery.summary import CaseSummary


@dataclass(frozen=True)
class Prepared:
    """A claimed row and the email made for it."""

    claimed: ClaimedNotification
    email: OutgoingEmail
    locale: str


def compose_email(
    claimed: ClaimedNotification,
    case: CaseSummary,
    recipient: Recipient,
    *,
    settings: Settings,
    sender: Sender,
    clock: Clock,
) -> OutgoingEmail:
    # Every email carries a link issued now: reminders and fresh links never reuse one.
    link = issue_link(
        secret_key=settings.secret_key,
        public_base_url=settings.public_base_url,
        case_id=case.id,
        ttl=settings.recovery_link_ttl,
        clock=clock,
    )
    content = render_email(
        RecoveryEmail(
            purpose=claimed.kind,
            case_kind=case.kind,
            locale=recipient.locale,
            merchant=settings.merchant_name,
            customer_name=recipient.name,
            amount=case.amount,
            currency=case.currency,
            link=link.url,
            link_expires_at=link.expires_at,
            method=case.method,
            decline_code=case.decline_code or case.error_code,
        )
    )
    return build_message(
        content,
        sender=sender,
        recipient_address=recipient.email,
        recipient_name=recipient.name,
        message_id=message_id_for(claimed.id, case.id, sender.domain),
        date=clock(),
        locale=recipient.locale,
    )
