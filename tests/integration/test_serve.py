"""`processor serve` as a real server process with production settings: access log and proxy
headers, metrics summed across workers, and a graceful shutdown that answers deliveries in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select, text

from processor.db.models import StripeEvent
from tests.fixtures.events import body_of, new_id, signature, stripe_event
from tests.fixtures.servers import free_port

WEBHOOK_SECRET = "whsec_serve_tests"
METRICS_TOKEN = "metrics-" + "t" * 32
START_TIMEOUT_SECONDS = 60


class Served:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager sends it; the exit status once the server is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def production_environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "DATABASE_URL", "TEST_", "PROMETHEUS_", "ACCESS_LOG"))
    }
    env.update(
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY="sk_test_serve",
        STRIPE_PUBLISHABLE_KEY="pk_test_serve",
        STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        STRIPE_API_BASE="http://127.0.0.1:9",  # nothing here may reach Stripe
        SECRET_KEY="s" * 40,
        METRICS_TOKEN=METRICS_TOKEN,
        PUBLIC_BASE_URL="https://shop.example",
        RUN_NOTIFIER="false",
        LOG_FORMAT="text",
    )
    env.update(extra)
    return env


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], *options: str) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "processor", "serve", "--port", str(port), *options],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, served.log_text()
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, served.log_text()
            time.sleep(0.1)
        yield served
    finally:
        served.stop()


def deliver(url: str) -> httpx.Response:
    """One signed delivery of a new event, on a connection of its own."""
    body = body_of(stripe_event("customer.created", {"id": new_id("cus"), "object": "customer"}))
    return httpx.post(
        f"{url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": signature(body, WEBHOOK_SECRET),
                 "Content-Type": "application/json"},
        timeout=60,
    )


def stored_events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(StripeEvent)) or 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "extra", "logged_client"),
    [
        ((), {}, "127.0.0.1"),
        (("--proxy-headers",), {"FORWARDED_ALLOW_IPS": "127.0.0.1"}, "203.0.113.7"),
        (("--proxy-headers",), {"FORWARDED_ALLOW_IPS": "192.0.2.1"}, "127.0.0.1"),
        ((), {"ACCESS_LOG": "false"}, None),
        (("--no-access-log",), {}, None),
        (("--access-log",), {"ACCESS_LOG": "false"}, "127.0.0.1"),
    ],
    ids=["default", "proxy-trusted", "proxy-not-trusted", "setting-off", "flag-off", "flag-wins"],
)
def test_access_log_and_proxy_headers(  # type: ignore[no-untyped-def]
    engine, database_url, tmp_path, options, extra, logged_client
) -> None:
    env = production_environment(database_url, **extra)
    with serving(tmp_path, env, *options) as server:
        answer = httpx.get(
            f"{server.url}/healthz", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10
        )
        assert answer.status_code == 200
        time.sleep(0.3)  # the access line is written after the answer
        lines = [line for line in server.log_text().splitlines() if "GET /healthz" in line]
    # The readiness polls of `serving` came without the header: only the last line is ours.
    if logged_client is None:
        assert lines == []
    else:
        assert lines, server.log_text()
        assert f"{logged_client}:" in lines[-1]
        assert ("203.0.113.7" in lines[-1]) == (logged_client == "203.0.113.7")


def _scraped_deliveries(url: str) -> tuple[float, float]:
    """(processor_webhook_deliveries_total summed over labels, latency histogram count)."""
    answer = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert answer.status_code == 200
    deliveries = observed = 0.0
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "processor_webhook_deliveries_total":
                deliveries += sample.value
            elif sample.name == "processor_webhook_processing_seconds_count":
                observed += sample.value
    return deliveries, observed


def _deliveries_counted_by_each_process(directory: Path) -> list[float]:
    counts = []
    for file in sorted(directory.glob("counter_*.db")):
        total = sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(file)])
            for sample in metric.samples
            if sample.name == "processor_webhook_deliveries_total"
        )
        counts.append(total)
    return counts


@pytest.mark.slow
def test_two_workers_every_scrape_counts_every_delivery(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    # Counts left by an earlier run must not be added in: the directory is emptied at start.
    leftover = subprocess.run(
        [sys.executable, "-c",
         "from processor.ops.metrics import Metrics; "
         "Metrics().webhook_deliveries.labels('customer.created', 'ignored').inc(5)"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, timeout=60, check=False,
    )
    assert leftover.returncode == 0
    assert list(metrics.glob("counter_*.db"))
    env = production_environment(database_url, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    delivered = 0
    with serving(tmp_path, env, "--workers", "2", "--no-access-log") as server:
        # The kernel may hand a burst to one worker: deliver more until both took some.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(10):
                answers = list(pool.map(lambda _: deliver(server.url), range(40)))
                assert [a.status_code for a in answers] == [200] * 40
                delivered += 40
                per_process = _deliveries_counted_by_each_process(metrics)
                if len([count for count in per_process if count > 0]) == 2:
                    break
        scrapes = [_scraped_deliveries(server.url) for _ in range(12)]
    assert scrapes == [(float(delivered), float(delivered))] * 12
    assert stored_events(engine) == delivered
    # Both workers took deliveries, so a scrape answered by either one summed the other's.
    assert len([count for count in per_process if count > 0]) == 2, per_process


@pytest.mark.slow
def test_several_workers_without_a_directory_get_a_temporary_one(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = production_environment(database_url, TMPDIR=str(temporary))
    with serving(tmp_path, env, "--workers", "2", "--no-access-log") as server:
        answers = [deliver(server.url) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 6
        assert {_scraped_deliveries(server.url) for _ in range(6)} == {(6.0, 6.0)}
        assert [p.name[:18] for p in temporary.iterdir()] == ["processor-metrics-"]
        exit_status = server.stop()
    assert exit_status == 0
    assert list(temporary.iterdir()) == []


@pytest.mark.slow
def test_sigterm_answers_the_deliveries_in_flight_before_exiting(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = production_environment(database_url)
    with serving(tmp_path, env) as server, ThreadPoolExecutor(max_workers=5) as pool:
        # Hold the table so that the deliveries cannot commit: they stay in flight. (On SQLite
        # the engine begins every transaction with BEGIN IMMEDIATE, which takes the write lock.)
        with engine.connect() as blocker, blocker.begin() as hold:
            if blocker.dialect.name == "postgresql":
                blocker.execute(text("LOCK TABLE stripe_events IN SHARE ROW EXCLUSIVE MODE"))
            in_flight = [pool.submit(deliver, server.url) for _ in range(5)]
            time.sleep(1.5)
            assert not any(future.done() for future in in_flight)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert server.process.poll() is None, "exited with deliveries unanswered"
            # New connections are refused once shutdown began.
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{server.url}/healthz", timeout=2)
            hold.rollback()
        answers = [future.result(timeout=30) for future in in_flight]
        # Its own exit, after the one SIGTERM: a second one (`stop`) would cut it short.
        exit_status = server.process.wait(timeout=30)
    assert [a.status_code for a in answers] == [200] * 5
    assert stored_events(engine) == 5
    assert exit_status == 0
