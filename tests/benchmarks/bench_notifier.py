"""Notifier throughput: one worker to a local SMTP server, and two workers on PostgreSQL.

    python tests/benchmarks/bench_notifier.py single [--emails 2000] [--database-url URL]
    python tests/benchmarks/bench_notifier.py pair --database-url postgresql://postgres@127.0.0.1:5432/postgres [--emails 10000]

`single` runs one in-process worker (batches of 50, one SMTP connection each) against an
aiosmtpd server in another process and reports emails per second. `pair` starts two
`processor notify` processes against one PostgreSQL database, queues the emails, and reports
the drain time, how the rows were shared, and that no Message-ID reached the server twice.
Each run uses a fresh database (a temporary SQLite file, or a new PostgreSQL database that is
dropped afterwards). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from processor.clock import utc_now  # noqa: E402
from processor.config import Settings, normalise_database_url  # noqa: E402
from processor.db.engine import make_engine  # noqa: E402
from processor.db.migrate import upgrade_to_head  # noqa: E402
from processor.db.models import Notification  # noqa: E402
from tests.fixtures.servers import free_port  # noqa: E402
from tests.integration.notifier.bulk import insert_due_cases  # noqa: E402

# ----------------------------------------------------------------------------- SMTP server


def _serve_smtp(port: int, ready: Any, stop: Any, results: Any) -> None:
    """Runs in its own process: accept everything, remember each Message-ID."""
    from email.parser import BytesHeaderParser

    from aiosmtpd.controller import Controller

    seen: list[str] = []
    parser = BytesHeaderParser()

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            seen.append(
                str(parser.parsebytes(envelope.original_content or envelope.content)["Message-ID"])
            )
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    cpu_started = time.process_time()
    stop.wait()
    controller.stop()
    results.put((seen, time.process_time() - cpu_started))


@contextmanager
def smtp_server():  # type: ignore[no-untyped-def]
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_serve_smtp, args=(port, ready, stop, results), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("SMTP server did not start")
    received: list[str] = []
    try:
        yield f"smtp://127.0.0.1:{port}", received
    finally:
        stop.set()
        seen, cpu = results.get(timeout=60)
        received.extend(seen)
        process.join(timeout=30)
        if seen:
            print(f"SMTP server: {len(seen)} messages, {cpu / len(seen) * 1000:.2f} ms CPU each")


# ----------------------------------------------------------------------------- databases


@contextmanager
def fresh_database(server_url: str | None):  # type: ignore[no-untyped-def]
    if server_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    url = make_url(normalise_database_url(server_url))
    name = f"bench_notifier_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _settings(database_url: str, smtp_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        smtp_url=smtp_url,
        public_base_url="https://shop.example",
        secret_key="b" * 40,
        mail_from="Example Shop <payments@shop.example>",
    )


def _sent_rows(engine: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    Notification.message_id, Notification.attempts, Notification.claimed_by
                ).where(Notification.kind == "initial", Notification.status == "sent")
            )
        )


# ----------------------------------------------------------------------------- scenarios


def run_single(emails: int, server_url: str | None) -> None:
    import stripe

    from processor.notifier.smtp import SmtpMailer
    from processor.notifier.worker import Notifier, NotifierOptions
    from processor.runtime import build_runtime

    with fresh_database(server_url) as database_url, smtp_server() as (smtp_url, received):
        engine = make_engine(database_url)
        upgrade_to_head(engine)
        insert_due_cases(engine, emails, now=utc_now() - timedelta(seconds=1))
        runtime = build_runtime(
            _settings(database_url, smtp_url),
            engine=engine,
            stripe_client=stripe.StripeClient("sk_test_unused"),
        )
        notifier = Notifier(
            runtime, mailer=SmtpMailer.from_url(smtp_url), options=NotifierOptions(batch_size=50)
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        tally = notifier.drain()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        rows = _sent_rows(engine)
        engine.dispose()
    duplicates = sum(n - 1 for n in Counter(received).values())
    print(
        f"database: {make_url(database_url).get_backend_name()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"one worker: {tally['sent']} emails in {elapsed:.2f} s = {tally['sent'] / elapsed:.0f} emails/s"
        f" ({tally['sent'] / cpu:.0f} per CPU-second of the worker process)"
    )
    print(
        f"server received {len(received)} messages, {duplicates} duplicates; rows sent: {len(rows)}"
    )


def run_pair(emails: int, server_url: str) -> None:
    with fresh_database(server_url) as database_url, smtp_server() as (smtp_url, received):
        engine = make_engine(database_url)
        upgrade_to_head(engine)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "TEST_"))}
        env.update(
            DATABASE_URL=database_url,
            SMTP_URL=smtp_url,
            PUBLIC_BASE_URL="https://shop.example",
            SECRET_KEY="b" * 40,
            MAIL_FROM="Example Shop <payments@shop.example>",
            LOG_FORMAT="text",
        )
        logs = [tempfile.NamedTemporaryFile("w+b", suffix=".log") for _ in range(2)]  # noqa: SIM115
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "processor",
                    "notify",
                    "--batch-size",
                    "50",
                    "--poll-interval",
                    "0.05",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for log in logs
        ]
        try:
            deadline = time.monotonic() + 120
            for log in logs:
                while b"started" not in Path(log.name).read_bytes():
                    if time.monotonic() > deadline:
                        raise RuntimeError("workers did not start")
                    time.sleep(0.05)
            insert_due_cases(engine, emails, now=utc_now())
            started = time.perf_counter()
            deadline = time.monotonic() + 600
            while True:
                with engine.connect() as connection:
                    sent = connection.scalar(
                        select(func.count())
                        .select_from(Notification)
                        .where(Notification.kind == "initial", Notification.status == "sent")
                    )
                if sent == emails:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {sent} of {emails} sent")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=60) for worker in workers]
        rows = _sent_rows(engine)
        engine.dispose()
    ids = Counter(received)
    shares = Counter(row.claimed_by for row in rows)
    print(
        "database: postgresql; two `processor notify` processes; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"drained {emails} emails in {elapsed:.2f} s = {emails / elapsed:.0f} emails/s")
    print(f"rows per worker: {sorted(shares.values())}; exit codes {codes}")
    print(
        f"server received {len(received)} messages, {len(ids)} distinct Message-IDs, "
        f"{sum(n - 1 for n in ids.values())} duplicates; "
        f"rows with more than one attempt: {sum(1 for r in rows if r.attempts != 1)}"
    )
    if len(received) != emails or len(ids) != emails:
        raise SystemExit("FAILED: a message was lost or sent twice")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["single", "pair"])
    parser.add_argument("--emails", type=int)
    parser.add_argument(
        "--database-url", help="a PostgreSQL server URL; SQLite when omitted (single)"
    )
    args = parser.parse_args()
    if args.scenario == "single":
        run_single(args.emails or 2000, args.database_url)
    else:
        if not args.database_url:
            parser.error("pair needs --database-url postgresql://...")
        run_pair(args.emails or 10_000, args.database_url)


if __name__ == "__main__":
    main()
