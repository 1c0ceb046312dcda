"""The notifier against a real SMTP server (aiosmtpd on loopback) and a real database."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from processor.db.engine import unit_of_work
from processor.db.models import Customer, RecoveryCase
from processor.notifier.worker import NotifierOptions
from processor.recovery.cases import close_case
from processor.recovery.links import read_link
from processor.recovery.outbox import claim_due_notifications
from tests.integration.notifier.conftest import FAST_RETRIES
from tests.integration.notifier.factories import (
    first_notification,
    notifications_of,
    only_notification,
    open_case,
)

SECRET = "s" * 40
LINK = re.compile(r"https://shop\.example/recover/([A-Za-z0-9_.\-]+)")


def test_first_email_is_sent_and_recorded(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock(), email="ada@example.com", name="Ada Lovelace")
    tally = make_notifier(smtp_server.url).run_batch()
    assert tally["sent"] == 1
    [mail] = smtp_server.wait_for(1)
    assert mail.envelope_to == ("ada@example.com",)
    assert mail.envelope_from == "payments@shop.example"
    assert mail.message["To"] == "Ada Lovelace <ada@example.com>"
    assert mail.message["Subject"] == "Please confirm your payment of $19.99 to Example Shop"
    row = first_notification(sessions, case_id)
    assert mail.message_id == f"<notification-{row.id}.{case_id}@shop.example>"
    assert (row.status, row.message_id, row.recipient, row.locale, row.sent_at) == (
        "sent",
        mail.message_id,
        "ada@example.com",
        "en",
        clock(),
    )
    # The link in both parts opens this case.
    [token] = set(LINK.findall(mail.body("plain")))
    assert token in mail.body("html")
    assert read_link(token, secret_key=SECRET, ttl=timedelta(days=7), clock=clock) == case_id


def test_first_email_schedules_the_reminders(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    clock.advance(minutes=3)
    make_notifier(smtp_server.url).run_batch()
    rows = notifications_of(sessions, case_id)
    assert [(r.kind, r.sequence, r.status) for r in rows] == [
        ("initial", 0, "sent"),
        ("reminder", 1, "pending"),
        ("reminder", 2, "pending"),
    ]
    assert [r.next_attempt_at - rows[0].sent_at for r in rows[1:]] == [
        timedelta(days=1),
        timedelta(days=3),
    ]
    assert [r.dedup_key for r in rows[1:]] == [f"case:{case_id}:1", f"case:{case_id}:2"]


def test_one_connection_serves_a_batch(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    for i in range(7):
        open_case(sessions, now=clock(), email=f"c{i}@example.com")
    tally = make_notifier(smtp_server.url).run_batch()
    assert tally["sent"] == 7
    assert len(smtp_server.wait_for(7)) == 7
    assert smtp_server.handler.connections == 1


def test_japanese_customer_gets_japanese_email_in_yen(
    sessions, clock, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(
        sessions,
        now=clock(),
        email="hanako@example.jp",
        name="山田 花子",
        locale="ja-JP",
        currency="jpy",
        amount=4800,
        code="card_declined",
        decline_code="insufficient_funds",
    )
    make_notifier(smtp_server.url).run_batch()
    [mail] = smtp_server.wait_for(1)
    assert mail.message["Subject"] == "【Example Shop】お支払い（￥4,800）が完了しませんでした"  # noqa: RUF001
    assert mail.message["To"].addresses[0].display_name == "山田 花子"
    assert "山田 花子 様" in mail.body("plain") and "残高が不足していた" in mail.body("plain")
    assert first_notification(sessions, case_id).locale == "ja"


def test_refused_then_accepted_is_retried(sessions, clock, make_smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(refuse_first=1)
    case_id = open_case(sessions, now=clock())
    notifier = make_notifier(server.url)
    assert notifier.run_batch()["retry"] == 1
    row = only_notification(sessions, case_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in (row.last_error or "")
    assert notifier.run_batch().claimed == 0  # backing off
    clock.now = row.next_attempt_at
    assert notifier.run_batch()["sent"] == 1
    [mail] = server.wait_for(1)
    assert server.handler.refused == 1
    row = first_notification(sessions, case_id)
    assert (row.status, row.attempts, row.message_id) == ("sent", 2, mail.message_id)


def test_server_down_is_retried_then_dead(sessions, clock, smtp_down_url, make_notifier) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    notifier = make_notifier(smtp_down_url)
    outcomes = []
    for _ in range(FAST_RETRIES.max_attempts):
        tally = notifier.run_batch()
        outcomes += [o for o, n in tally.counts.items() for _ in range(n)]
        clock.advance(minutes=2)
    assert outcomes == ["retry", "retry", "dead"]
    row = only_notification(sessions, case_id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "unavailable" in (row.last_error or "") and "Refused" in (row.last_error or "")
    clock.advance(days=10)
    assert notifier.run_batch().claimed == 0


def test_permanent_refusal_is_dead_at_once(
    sessions, clock, make_smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(refuse_first=1, refusal="550 5.1.1 Mailbox does not exist")
    case_id = open_case(sessions, now=clock())
    assert make_notifier(server.url).run_batch()["dead"] == 1
    row = only_notification(sessions, case_id)
    assert row.status == "dead" and "550" in (row.last_error or "")


def test_a_failure_does_not_hold_back_the_rest_of_the_batch(
    sessions, clock, make_smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(refuse_first=1)
    first = open_case(sessions, now=clock() - timedelta(seconds=1))
    second = open_case(sessions, now=clock())
    tally = make_notifier(server.url).run_batch()
    assert (tally["retry"], tally["sent"]) == (1, 1)
    assert only_notification(sessions, first).status == "pending"
    assert first_notification(sessions, second).status == "sent"
    assert server.handler.connections == 1


def test_closed_case_sends_nothing(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock(), payment_intent_id="pi_closed")
    with unit_of_work(sessions) as session:
        close_case(session, "pi_closed", status="recovered", at=clock(), now=clock())
    # close_case cancels what is pending, so the notifier has nothing to claim.
    assert make_notifier(smtp_server.url).run_batch().claimed == 0
    assert only_notification(sessions, case_id).status == "canceled"
    assert smtp_server.messages == []


def test_case_closed_while_claimed_is_skipped_at_send_time(
    sessions, clock, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    with unit_of_work(sessions) as session:
        # A worker claimed the row and died; then the payment succeeded.
        claim_due_notifications(
            session, worker_id="crashed", now=clock(), limit=10, lease=timedelta(minutes=5)
        )
        session.execute(
            update(RecoveryCase).where(RecoveryCase.id == case_id).values(status="recovered")
        )
    clock.advance(minutes=6)
    tally = make_notifier(smtp_server.url).run_batch()
    assert tally["skipped"] == 1
    row = only_notification(sessions, case_id)
    assert row.status == "skipped" and row.message_id is None
    assert smtp_server.messages == []


def test_crashed_worker_row_is_sent_after_the_lease_with_the_same_message_id(
    sessions, clock, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    with unit_of_work(sessions) as session:
        [claimed] = claim_due_notifications(
            session, worker_id="crashed", now=clock(), limit=10, lease=timedelta(minutes=5)
        )
    notifier = make_notifier(smtp_server.url)
    assert notifier.run_batch().claimed == 0  # still leased
    clock.advance(minutes=5)
    assert notifier.run_batch()["sent"] == 1
    [mail] = smtp_server.wait_for(1)
    assert mail.message_id == f"<notification-{claimed.id}.{case_id}@shop.example>"
    assert first_notification(sessions, case_id).attempts == 2


def test_header_injection_through_the_name_is_harmless(
    sessions, clock, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    open_case(sessions, now=clock(), name="Eve\r\nBcc: attacker@evil.example\r\n")
    make_notifier(smtp_server.url).run_batch()
    [mail] = smtp_server.wait_for(1)
    assert mail.envelope_to == ("ada@example.com",)
    assert mail.message["Bcc"] is None
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", head)


def test_customer_without_an_address_is_dead_not_retried(
    sessions, clock, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock())
    with unit_of_work(sessions) as session:
        session.execute(update(Customer).values(email="not an address"))
    assert make_notifier(smtp_server.url).run_batch()["dead"] == 1
    assert "not valid" in (only_notification(sessions, case_id).last_error or "")


def test_stop_releases_the_rest_of_the_batch(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    import threading

    for i in range(3):
        open_case(sessions, now=clock(), email=f"s{i}@example.com")
    stop = threading.Event()
    stop.set()
    tally = make_notifier(smtp_server.url).run_batch(stop)
    assert tally["released"] == 3
    tally = make_notifier(smtp_server.url).run_batch()
    assert tally["sent"] == 3


def test_starttls_with_login(
    sessions, clock, make_smtp_server, smtp_certificate, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(tls="starttls", certificate=smtp_certificate, login=True)
    assert server.url.startswith("smtp://mailer:") and server.url.endswith("?starttls=true")
    open_case(sessions, now=clock())
    notifier = make_notifier(server.url, tls_context=smtp_certificate.client_context())
    assert notifier.run_batch()["sent"] == 1
    assert len(server.wait_for(1)) == 1
    assert server.handler.logins == 1


def test_implicit_tls_with_login(
    sessions, clock, make_smtp_server, smtp_certificate, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(tls="implicit", certificate=smtp_certificate, login=True)
    assert server.url.startswith("smtps://mailer:")
    open_case(sessions, now=clock())
    notifier = make_notifier(server.url, tls_context=smtp_certificate.client_context())
    assert notifier.run_batch()["sent"] == 1
    assert len(server.wait_for(1)) == 1
    assert server.handler.logins == 1


def test_wrong_password_is_retried_not_sent(
    sessions, clock, make_smtp_server, smtp_certificate, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(tls="starttls", certificate=smtp_certificate, login=True)
    wrong = server.url.replace("mailer:", "mailer:x")
    case_id = open_case(sessions, now=clock())
    notifier = make_notifier(wrong, tls_context=smtp_certificate.client_context())
    assert notifier.run_batch()["retry"] == 1
    assert "535" in (only_notification(sessions, case_id).last_error or "")
    assert server.messages == []


def test_untrusted_certificate_is_refused(
    sessions, clock, make_smtp_server, smtp_certificate, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(tls="starttls", certificate=smtp_certificate)
    open_case(sessions, now=clock())
    # The default context trusts the system's CAs only, not the test's self-signed certificate.
    assert make_notifier(server.url).run_batch()["retry"] == 1
    assert server.messages == []


def test_drain_sends_everything_due(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    for i in range(12):
        open_case(sessions, now=clock(), email=f"d{i}@example.com")
    notifier = make_notifier(smtp_server.url, options=NotifierOptions(batch_size=5))
    tally = notifier.drain()
    assert tally["sent"] == 12
    assert len({m.message_id for m in smtp_server.wait_for(12)}) == 12


def test_an_unexpected_error_is_recorded_without_the_secrets_it_quotes(  # type: ignore[no-untyped-def]
    sessions, clock, smtp_server, make_notifier, monkeypatch
) -> None:
    case_id = open_case(sessions, now=clock())

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("template saw sk_live_" + "a" * 24 + " and 4242424242424242")

    monkeypatch.setattr("processor.notifier.worker.compose_email", broken)
    assert make_notifier(smtp_server.url).run_batch()["retry"] == 1
    error = only_notification(sessions, case_id).last_error or ""
    assert error.startswith("internal error: RuntimeError: template saw [redacted]")
    assert "sk_live_" not in error and "4242424242424242" not in error
