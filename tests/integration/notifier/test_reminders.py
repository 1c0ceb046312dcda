"""The reminder schedule under freezegun: 1 and 3 days after the first email, each with a fresh
link, only while the case is open; nothing at all once it is recovered."""

from __future__ import annotations

import re
from datetime import timedelta

from freezegun import freeze_time

from processor.clock import utc_now
from processor.db.engine import unit_of_work
from processor.recovery.cases import close_case
from processor.recovery.links import read_link
from tests.integration.notifier.factories import notifications_of, open_case

START = "2026-11-30 09:00:00"
TOKEN = re.compile(r"https://shop\.example/recover/([A-Za-z0-9_.\-]+)")


def _token(mail) -> str:  # type: ignore[no-untyped-def]
    [token] = set(TOKEN.findall(mail.body("plain")))
    return token


def test_reminders_follow_the_schedule_with_fresh_links(
    sessions, smtp_server, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(START) as frozen:
        case_id = open_case(sessions, now=utc_now(), payment_intent_id="pi_remind")
        notifier = make_notifier(smtp_server.url, clock_=utc_now)
        frozen.tick(timedelta(seconds=30))
        assert notifier.run_batch()["sent"] == 1
        first_sent = utc_now()

        frozen.move_to(first_sent + timedelta(days=1) - timedelta(seconds=1))
        assert notifier.run_batch().claimed == 0
        frozen.move_to(first_sent + timedelta(days=1))
        assert notifier.run_batch()["sent"] == 1
        frozen.move_to(first_sent + timedelta(days=3))
        assert notifier.run_batch()["sent"] == 1
        frozen.move_to(first_sent + timedelta(days=30))
        assert notifier.run_batch().claimed == 0

        initial, first_reminder, second_reminder = smtp_server.wait_for(3)
        assert not initial.message["Subject"].startswith("Reminder:")
        assert first_reminder.message["Subject"].startswith("Reminder:")
        assert second_reminder.message["Subject"].startswith("Reminder:")
        tokens = [_token(m) for m in (initial, first_reminder, second_reminder)]
        assert len(set(tokens)) == 3  # every email carries its own, fresh link
        # The first link has expired by now; the last reminder's link still opens the case.
        ttl = timedelta(days=7)
        frozen.move_to(first_sent + timedelta(days=9))
        assert read_link(tokens[2], secret_key="s" * 40, ttl=ttl, clock=utc_now) == case_id
        rows = notifications_of(sessions, case_id)
        assert [(r.kind, r.status, r.sent_at - first_sent) for r in rows] == [
            ("initial", "sent", timedelta(0)),
            ("reminder", "sent", timedelta(days=1)),
            ("reminder", "sent", timedelta(days=3)),
        ]
        assert len({r.message_id for r in rows}) == 3


def test_no_reminder_after_recovery(sessions, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(START) as frozen:
        case_id = open_case(sessions, now=utc_now(), payment_intent_id="pi_paid")
        notifier = make_notifier(smtp_server.url, clock_=utc_now)
        assert notifier.run_batch()["sent"] == 1
        frozen.tick(timedelta(hours=20))
        with unit_of_work(sessions) as session:
            close_case(session, "pi_paid", status="recovered", at=utc_now(), now=utc_now())
        for days in (1, 3, 10):
            frozen.move_to(f"2026-12-{days:02d} 09:00:00")
            frozen.tick(timedelta(days=1))
            assert notifier.run_batch().claimed == 0
        assert len(smtp_server.messages) == 1
        assert [(r.kind, r.status) for r in notifications_of(sessions, case_id)] == [
            ("initial", "sent"),
            ("reminder", "canceled"),
            ("reminder", "canceled"),
        ]


def test_schedule_comes_from_settings(sessions, smtp_server, make_notifier, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        smtp_url=smtp_server.url,
        public_base_url="https://shop.example",
        secret_key="s" * 40,
        mail_from="Example Shop <payments@shop.example>",
        reminder_schedule=(timedelta(hours=6), timedelta(days=2), timedelta(days=5)),
    )
    with freeze_time(START) as frozen:
        case_id = open_case(sessions, now=utc_now())
        notifier = make_notifier(smtp_server.url, settings=settings, clock_=utc_now)
        notifier.run_batch()
        sent_at = utc_now()
        for offset in (timedelta(hours=6), timedelta(days=2), timedelta(days=5)):
            frozen.move_to(sent_at + offset)
            assert notifier.run_batch()["sent"] == 1
    assert len(smtp_server.wait_for(4)) == 4
    assert [r.sequence for r in notifications_of(sessions, case_id)] == [0, 1, 2, 3]


def test_no_reminders_when_the_first_email_never_went_out(
    sessions, smtp_down_url, make_notifier
) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(START) as frozen:
        case_id = open_case(sessions, now=utc_now())
        notifier = make_notifier(smtp_down_url, clock_=utc_now)
        for _ in range(3):
            notifier.run_batch()
            frozen.tick(timedelta(hours=1))
        frozen.tick(timedelta(days=5))
        assert notifier.run_batch().claimed == 0
    assert [(r.kind, r.status) for r in notifications_of(sessions, case_id)] == [
        ("initial", "dead")
    ]
