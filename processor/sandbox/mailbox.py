"""The sandbox mail sink: a real SMTP server on loopback that keeps what it receives, and pages
under `/sandbox/mail` to read it. Nothing leaves the machine.
"""

from __future__ import annotations

import html
import re
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

_URL = re.compile(r"(https?://[^\s<]+)")
_PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'"
_MESSAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink received it."""

    number: int
    received_at: datetime
    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    def body(self, subtype: str) -> str | None:
        part = self.message.get_body(preferencelist=(subtype,))
        return None if part is None else str(part.get_content())


class Mailbox:
    """Thread-safe store of received mail, fed by an aiosmtpd handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mail: list[ReceivedMail] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self._mail.append(
                ReceivedMail(
                    number=len(self._mail) + 1,
                    received_at=datetime.now(UTC),
                    envelope_from=envelope.mail_from,
                    envelope_to=tuple(envelope.rcpt_tos),
                    message=message,
                )
            )
        return "250 OK"

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mail)

    def clear(self) -> None:
        with self._lock:
            self._mail.clear()


class MailSink:
    """The SMTP server of the sandbox, listening on 127.0.0.1 at a free (or given) port."""

    def __init__(self, port: int = 0) -> None:
        self.mailbox = Mailbox()
        self.port = port or _free_port()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def mail_routes(mailbox: Mailbox) -> list[Route]:
    """`/` lists received mail, `/{n}` shows one, `/{n}/html` serves its HTML part alone."""

    async def index(request: Request) -> Response:
        rows = "".join(
            f"<tr><td>{m.number}</td><td>{m.received_at:%Y-%m-%d %H:%M:%S}</td>"
            f"<td>{html.escape(', '.join(m.envelope_to))}</td>"
            f'<td><a href="{request.url_for("sandbox_mail_show", number=m.number).path}">'
            f"{html.escape(m.subject) or '(no subject)'}</a></td></tr>"
            for m in reversed(mailbox.messages)
        )
        empty = "<tr><td colspan=4>No mail yet.</td></tr>"
        body = (
            "<h1>Sandbox mail</h1><p>Everything the service sent while in sandbox mode.</p>"
            "<table><thead><tr><th>#</th><th>Received (UTC)</th><th>To</th><th>Subject</th>"
            f"</tr></thead><tbody>{rows or empty}</tbody></table>"
        )
        return _page("Sandbox mail", body)

    async def show(request: Request) -> Response:
        mail = _find(mailbox, request.path_params["number"])
        if mail is None:
            return _page("Not found", "<h1>No such message</h1>", status_code=404)
        text = mail.body("plain") or ""
        html_url = request.url_for("sandbox_mail_html", number=mail.number).path
        html_link = (
            f'<p><a href="{html_url}">Open the HTML version</a></p>' if mail.body("html") else ""
        )
        headers = "".join(
            f"<dt>{html.escape(name)}</dt><dd>{html.escape(str(mail.message.get(name, '')))}</dd>"
            for name in ("From", "To", "Subject", "Date", "Message-ID")
        )
        body = (
            f'<p><a href="{request.url_for("sandbox_mail_index").path}">All mail</a></p>'
            f"<h1>{html.escape(mail.subject)}</h1>"
            f"<dl>{headers}</dl>{html_link}<pre>{_linkify(text)}</pre>"
        )
        return _page(mail.subject, body)

    async def show_html(request: Request) -> Response:
        mail = _find(mailbox, request.path_params["number"])
        content = None if mail is None else mail.body("html")
        if content is None:
            return _page("Not found", "<h1>No HTML part</h1>", status_code=404)
        return HTMLResponse(content, headers={"Content-Security-Policy": _MESSAGE_CSP})

    return [
        Route("/", index, name="sandbox_mail_index"),
        Route("/{number:int}", show, name="sandbox_mail_show"),
        Route("/{number:int}/html", show_html, name="sandbox_mail_html"),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _find(mailbox: Mailbox, number: int) -> ReceivedMail | None:
    return next((m for m in mailbox.messages if m.number == number), None)


def _linkify(text: str) -> str:
    return _URL.sub(r'<a href="\1">\1</a>', html.escape(text))


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        '</title><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"</head><body><p><strong>Sandbox mode</strong>: mail kept on this machine, never sent."
        f"</p>{body}</body></html>"
    )
    return HTMLResponse(
        document, status_code=status_code, headers={"Content-Security-Policy": _PAGE_CSP}
    )
