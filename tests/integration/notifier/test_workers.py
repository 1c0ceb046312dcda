"""`processor notify` as real processes: `--once` drains, and two workers on PostgreSQL share
1,000 emails with each sent exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from processor.clock import utc_now
from processor.db.models import Notification
from tests.integration.notifier.bulk import insert_due_cases

ROOT = Path(__file__).resolve().parents[3]


def _environment(database_url: str, smtp_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TEST_"))}
    env.update(
        DATABASE_URL=database_url,
        # A deployment's settings: the notifier never calls Stripe, but it is no sandbox.
        STRIPE_SECRET_KEY="sk_test_notifier",
        STRIPE_PUBLISHABLE_KEY="pk_test_notifier",
        STRIPE_WEBHOOK_SECRETS="whsec_notifier",
        SMTP_URL=smtp_url,
        PUBLIC_BASE_URL="https://shop.example",
        SECRET_KEY="w" * 40,
        MAIL_FROM="Example Shop <payments@shop.example>",
        LOG_FORMAT="text",
    )
    return env


def _initial_rows(engine: Engine) -> list[Notification]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(Notification).where(Notification.kind == "initial").order_by(Notification.id)
            )
        )


def test_notify_once_drains_and_exits(engine, database_url, smtp_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    insert_due_cases(engine, 5, now=utc_now() - timedelta(seconds=1), prefix="once")
    result = subprocess.run(
        [sys.executable, "-m", "processor", "notify", "--once"],
        env=_environment(database_url, smtp_server.url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "sent 5" in result.stdout
    assert len(smtp_server.wait_for(5)) == 5
    assert {row.status for row in _initial_rows(engine)} == {"sent"}


def test_notify_without_smtp_url_refuses_to_start(database_url) -> None:  # type: ignore[no-untyped-def]
    env = _environment(database_url, "")
    del env["SMTP_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "processor", "notify", "--once"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SMTP_URL" in result.stderr


def _wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert process.poll() is None, path.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_workers_on_postgresql_send_each_email_exactly_once(
    engine, database_url, smtp_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL (SKIP LOCKED)")
    env = _environment(database_url, smtp_server.url)
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n in range(2):
            log = tmp_path / f"worker{n}.log"
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "processor",
                    "notify",
                    "--batch-size",
                    "20",
                    "--poll-interval",
                    "0.05",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
            )
            workers.append((process, log))
        for process, log in workers:
            _wait_for_log(log, "started", process, timeout=60)

        insert_due_cases(engine, 1000, now=utc_now(), prefix="pair")
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as connection:
                sent = connection.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.kind == "initial", Notification.status == "sent")
                )
            if sent == 1000:
                break
            assert time.monotonic() < deadline, f"only {sent} of 1000 sent in time"
            time.sleep(0.2)
    finally:
        for process, _log in workers:
            process.send_signal(signal.SIGTERM)
        for process, log in workers:
            assert process.wait(timeout=30) == 0, log.read_text(errors="replace")

    received = smtp_server.wait_for(1000)
    time.sleep(0.3)  # anything sent twice would have arrived by now
    ids = Counter(mail.message_id for mail in smtp_server.messages)
    assert len(smtp_server.messages) == 1000
    assert set(ids.values()) == {1}
    rows = _initial_rows(engine)
    assert {row.message_id for row in rows} == set(ids)
    assert all(row.attempts == 1 for row in rows)
    senders = Counter(row.claimed_by for row in rows)
    assert len(senders) == 2, senders  # both processes took part
    assert {mail.envelope_to[0] for mail in received} == {row.recipient for row in rows}
