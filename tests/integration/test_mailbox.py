"""The sandbox mail sink receives over real SMTP and shows what it got."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from processor.sandbox.mailbox import MailSink, mail_routes


def test_mail_sent_over_smtp_is_listed_and_readable() -> None:
    sink = MailSink().start()
    try:
        message = EmailMessage()
        message["From"] = "shop@example.com"
        message["To"] = "ada@example.com"
        message["Subject"] = "Your payment needs attention"
        message.set_content("Open https://shop.example/recover/abc?x=1 to pay.")
        message.add_alternative("<p><a href='https://shop.example/recover/abc'>Pay</a></p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as smtp:
            smtp.send_message(message)
        app = Starlette(routes=[Mount("/sandbox/mail", routes=mail_routes(sink.mailbox))])
        with TestClient(app) as client:
            listing = client.get("/sandbox/mail/")
            assert "Your payment needs attention" in listing.text
            assert 'href="/sandbox/mail/1"' in listing.text
            shown = client.get("/sandbox/mail/1")
            assert '<a href="https://shop.example/recover/abc?x=1">' in shown.text
            assert "default-src 'none'" in shown.headers["content-security-policy"]
            assert "Pay</a>" in client.get("/sandbox/mail/1/html").text
            assert client.get("/sandbox/mail/2").status_code == 404
        assert sink.mailbox.messages[0].envelope_to == ("ada@example.com",)
    finally:
        sink.stop()
