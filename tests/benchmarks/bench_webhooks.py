"""Webhook receiver throughput and latency, against a bare endpoint and a peer in the same run.

    apt-get install -y wrk                                   # the load generator (Debian)
    python -m tests.benchmarks.bench_webhooks                # bare, peer, pg1, pg2, sqlite1
    python -m tests.benchmarks.bench_webhooks --targets peer pg1 --seconds 5
    python -m tests.benchmarks.bench_webhooks --targets peer pg1 --rounds 5   # medians of 5
    python -m tests.benchmarks.bench_webhooks --targets bare sqlite1 sqlite2 --mix realistic

Targets, each served on 127.0.0.1 in its own process(es) and run in the order given:

- `bare`: uvicorn and a Starlette endpoint that reads the body and answers 200 (`bareN`: N
  workers).
- `peer`: Supabase's Stripe Sync Engine (npm @supabase/stripe-sync-engine, CommonJS build)
  behind a minimal Node http server (sync_engine_server.js): `processWebhook(body, signature)`,
  200 once it resolves, 500 if it throws. It gets a fresh PostgreSQL database migrated by its
  own `runMigrations`, no revalidation through Stripe, no backfill of related objects, and a
  Stripe client aimed at a dead local port. npm installs it once into
  ~/.cache/processor-bench/sync-engine; without node (or npm and that cache) the row is
  skipped.
- `pgN` / `sqliteN`: the service as production runs it (`processor serve --workers N
  --no-access-log`, production settings) on a fresh PostgreSQL database or SQLite file.

wrk, in another process, keeps 32 connections busy with unique, really signed events, each
sent once: by default (`--mix intents`) full Stripe objects of 2-5 KB alternating
`payment_intent.payment_failed` and `setup_intent.succeeded`, which both the peer and the
receiver store; `--mix realistic` is the receiver's own mix of six types in 1.2-1.7 KB events
(the objects' fields it reads, padded with null fields). Afterwards
each target is checked: every 2xx answer must have left exactly one stored event (the
receiver's stored events, the peer's rows in payment_intents and setup_intents).

CPU per event is split into the server (its process and everything under it, from /proc) and
PostgreSQL (the server's process tree during the run, exited backends included, minus the
backends of other databases). Without wrk, `--client httpx` drives the load from an asyncio
process instead (slower, so it measures less). Each run is bounded by `--seconds`; the
machine is shared, and its pace drifts from minute to minute by more than one run can tell
apart: `--rounds N` runs the whole list N times over and reports medians, each target's rate
and p99 set against the peer's of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from stripe import WebhookSignature

from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.models import StripeEvent
from tests.fixtures.servers import free_port

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DEAD_PORT = 9  # discard: nothing listens there; where the peer's Stripe client is aimed
# Share of each type in the generated stream: what a shop saving cards and charging them sees.
MIXES: dict[str, tuple[tuple[str, int], ...]] = {
    # What both the peer and the receiver store; alternating (see `_pick`).
    "intents": (("payment_intent.payment_failed", 1), ("setup_intent.succeeded", 1)),
    "realistic": (
        ("payment_intent.succeeded", 20),
        ("payment_intent.payment_failed", 15),
        ("setup_intent.succeeded", 15),
        ("payment_method.attached", 15),
        ("payment_intent.created", 15),  # no handler: stored as ignored
        ("charge.succeeded", 20),  # no handler: stored as ignored
    ),
}
PADDING_FIELDS = 60  # Stripe objects carry many null fields; bodies of 1.2-1.7 KB

# The peer, pinned: the package and the Stripe SDK it takes as a peer dependency (> 18).
SYNC_ENGINE_PACKAGES = {"@supabase/stripe-sync-engine": "0.48.5", "stripe": "23.2.0"}
SYNC_ENGINE_SCHEMA = "stripe"
SYNC_ENGINE_SERVER = Path(__file__).with_name("sync_engine_server.js")
DEFAULT_TARGETS = ["bare", "peer", "pg1", "pg2", "sqlite1"]


def bare_app() -> Starlette:
    """The baseline: the same server stack, an endpoint that reads the body and answers 200."""

    async def ok(request: Request) -> Response:
        await request.body()
        return Response(b'{"received":true}', media_type="application/json")

    return Starlette(routes=[Route("/webhooks/stripe", ok, methods=["POST"])])


# -- events ----------------------------------------------------------------------------------


def _object(event_type: str, n: int) -> dict[str, Any]:
    """The realistic mix's objects: the fields the receiver reads, padded with null fields."""
    family = event_type.split(".")[0]
    padding = {f"field_{i:02d}": None for i in range(PADDING_FIELDS)}
    if family == "payment_intent":
        error = None
        if event_type.endswith("payment_failed"):
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "charge": f"ch_b{n}",
                "message": "Your card has insufficient funds.",
                "payment_method": {"id": f"pm_b{n}", "object": "payment_method", "type": "card"},
            }
        return {
            "id": f"pi_b{n}",
            "object": "payment_intent",
            "amount": 1999,
            "currency": "usd",
            "customer": f"cus_b{n}",
            "latest_charge": f"ch_b{n}",
            "payment_method": f"pm_b{n}",
            "last_payment_error": error,
            "metadata": {"reference": f"order-{n}"},
            "status": "requires_payment_method" if error else "succeeded",
            "client_secret": f"pi_b{n}_secret_x",
            "created": int(time.time()),
            **padding,
        }
    if family == "setup_intent":
        return {
            "id": f"seti_b{n}",
            "object": "setup_intent",
            "customer": f"cus_b{n}",
            "payment_method": f"pm_b{n}",
            "status": "succeeded",
            "created": int(time.time()),
            **padding,
        }
    if family == "payment_method":
        return {
            "id": f"pm_b{n}",
            "object": "payment_method",
            "type": "card",
            "customer": f"cus_b{n}",
            "allow_redisplay": "always",
            "card": {
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "country": "US",
            },
            **padding,
        }
    return {"id": f"ch_b{n}", "object": "charge", "amount": 1999, **padding}


def _card_method(method_id: str, customer_id: str, n: int, created: int) -> dict[str, Any]:
    """A card PaymentMethod as Stripe expands it in `last_payment_error.payment_method`."""
    return {
        "id": method_id,
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": {
            "address": {
                "city": "Lyon",
                "country": "FR",
                "line1": f"{n % 200 + 1} rue de la République",
                "line2": None,
                "postal_code": "69002",
                "state": None,
            },
            "email": f"customer{n}@example.com",
            "name": "Camille Martin",
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": "pass",
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": "Xt5EWLLDS7FJjR1c",
            "funding": "credit",
            "generated_from": None,
            "last4": "9995",
            "networks": {"available": ["visa"], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created - 86_400,
        "customer": customer_id,
        "livemode": False,
        "metadata": {},
        "radar_options": {},
        "type": "card",
    }


def _intents_object(event_type: str, n: int, tag: str, created: int) -> dict[str, Any]:
    """The intents mix's objects: complete Stripe objects (API 2025), ids unique to the stream,
    so the peer stores every one from the event alone and never asks Stripe for more."""
    suffix = f"{tag}{n:08d}"
    customer = f"cus_{suffix}"
    method = f"pm_{suffix}"
    if event_type == "payment_intent.payment_failed":
        intent, charge = f"pi_{suffix}", f"ch_{suffix}"
        return {
            "id": intent,
            "object": "payment_intent",
            "amount": 4900,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{intent}_secret_{secrets.token_hex(12)}",
            "confirmation_method": "automatic",
            "created": created,
            "currency": "eur",
            "customer": customer,
            "description": f"Renewal of subscription {n}",
            "excluded_payment_method_types": None,
            "last_payment_error": {
                "advice_code": "try_again_later",
                "charge": charge,
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "doc_url": "https://docs.stripe.com/error-codes/card-declined",
                "message": "Your card has insufficient funds.",
                "network_decline_code": "51",
                "payment_method": _card_method(method, customer, n, created),
                "type": "card_error",
            },
            "latest_charge": charge,
            "livemode": False,
            "metadata": {"reference": f"order-{suffix}"},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
    if event_type == "setup_intent.succeeded":
        intent = f"seti_{suffix}"
        return {
            "id": intent,
            "object": "setup_intent",
            "application": None,
            "automatic_payment_methods": {"allow_redirects": "never", "enabled": True},
            "cancellation_reason": None,
            "client_secret": f"{intent}_secret_{secrets.token_hex(16)}",
            "created": created,
            "customer": customer,
            "description": "Card saved for renewals",
            "flow_directions": None,
            "last_setup_error": None,
            "latest_attempt": f"setatt_{suffix}",
            "livemode": False,
            "mandate": None,
            "metadata": {  # what a shop keeps about the consent to off-session charges
                "account": f"acct-{n}",
                "plan": "pro-monthly",
                "source": "account-settings",
                "locale": "fr-FR",
                "signup_campaign": "spring-referral",
                "internal_reference": str(uuid.uuid4()),
                "consent_text_version": "2025-03-01",
                "consent_accepted_at": str(created - 42),
                "customer_ip": f"203.0.113.{n % 250 + 1}",
                "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
                " (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                "return_url": f"https://shop.example.com/account/billing/{uuid.uuid4()}/done",
                "referrer": "https://shop.example.com/pricing?utm_source=newsletter"
                "&utm_medium=email&utm_campaign=spring-referral",
                "billing_email": f"billing{n}@example.com",
                "cart": f"cart_{uuid.uuid4().hex}",
                "tax_exempt": "none",
                "vat_number": "FR40303265045",
                "seats": str(n % 20 + 1),
                "coupon": "SPRING25",
                "previous_payment_method": f"pm_old{n:08d}",
            },
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": method,
            "payment_method_configuration_details": {"id": "pmc_1PbenchConfig0001", "parent": None},
            "payment_method_options": {
                "card": {
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                },
                "link": {"persistent_token": None},
                "sepa_debit": {"mandate_options": {"reference_prefix": None}},
            },
            "payment_method_types": ["card", "link", "sepa_debit"],
            "single_use_mandate": None,
            "status": "succeeded",
            "usage": "off_session",
        }
    raise ValueError(f"no object for {event_type} in the intents mix")


def signed_events(count: int, tag: str, mix: str = "intents") -> Iterator[tuple[str, str]]:
    """(Stripe-Signature, body) pairs: unique ids, signed now with the receiver's secret."""
    weights = [share for _type, share in MIXES[mix]]
    types = [event_type for event_type, _share in MIXES[mix]]
    now = int(time.time())
    for n in range(count):
        event_type = types[_pick(n, weights)]
        if mix == "intents":
            data = _intents_object(event_type, n, tag, now)
            request = {"id": f"req_{secrets.token_hex(7)}", "idempotency_key": str(uuid.uuid4())}
        else:
            data = _object(event_type, n)
            request = {"id": None, "idempotency_key": None}
        body = json.dumps(
            {
                "id": f"evt_{tag}{n:08d}",
                "object": "event",
                "api_version": "2026-10-28.endive",
                "created": now,
                "livemode": False,
                "pending_webhooks": 1,
                "type": event_type,
                "request": request,
                "data": {"object": data},
            },
            separators=(",", ":"),
        )
        yield WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET, now), body


def _pick(n: int, weights: list[int]) -> int:
    slot, total = (n * 7919) % sum(weights), 0
    for index, weight in enumerate(weights):
        total += weight
        if slot < total:
            return index
    return len(weights) - 1


# -- servers ---------------------------------------------------------------------------------


def _cpu_ticks(pid: int, *, reaped_children: bool = False) -> int | None:
    """utime + stime of `pid` (plus its waited-for children's with `reaped_children`)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # exited meanwhile
        return None
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and every process under it
        (uvicorn's workers)."""
        ticks = sum(_cpu_ticks(pid) or 0 for pid in _process_tree(self.process.pid))
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (children of every thread)."""
    found, index = [pid], 0
    while index < len(found):
        for children in Path(f"/proc/{found[index]}/task").glob("*/children"):
            try:
                found += [int(child) for child in children.read_text().split()]
            except FileNotFoundError:
                continue
        index += 1
    return found


def start_process(command: list[str], env: dict[str, str], name: str, settle: float) -> Server:
    """Start a server listening on `PORT`-style `url`, and wait until it answers."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    process = subprocess.Popen(command, env={**env, "PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering")
        try:
            httpx.post(f"{url}/webhooks/stripe", content=b"{}", timeout=1)
            time.sleep(settle)  # let every worker finish starting
            return Server(process, url)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not start on port {port}")


def start_server(target: str, workers: int, env: dict[str, str]) -> Server:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return start_process(command, env, target, 0.5 if workers > 1 else 0)


def start_receiver(workers: int, env: dict[str, str]) -> Server:
    """The receiver as production runs it: `processor serve`, access log off."""
    command = [
        sys.executable, "-m", "processor", "serve", "--host", "127.0.0.1", "--port", "{port}",
        "--workers", str(workers), "--no-access-log",
    ]
    return start_process(command, env, "processor serve", 0.5 if workers > 1 else 0)


def app_environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_PUBLISHABLE_KEY="pk_test_bench",
        STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        STRIPE_API_BASE=f"http://127.0.0.1:{DEAD_PORT}",  # never called on the webhook path
        SECRET_KEY=secrets.token_hex(32),
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
        RUN_NOTIFIER="false",
        LOG_FORMAT="text",
    )
    return env


# -- the peer: Stripe Sync Engine ------------------------------------------------------------


def sync_engine_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "processor-bench" / "sync-engine"


def install_sync_engine() -> tuple[Path | None, str]:
    """The peer's npm packages in the cache directory (installed once, then reused), or
    None and why not."""
    if not shutil.which("node"):
        return None, "node is not installed"
    directory = sync_engine_dir()
    marker = directory / "installed.json"
    package = directory / "node_modules" / "@supabase" / "stripe-sync-engine" / "package.json"
    try:
        if json.loads(marker.read_text()) == SYNC_ENGINE_PACKAGES and package.exists():
            return directory, "cached"
    except (FileNotFoundError, ValueError):
        pass
    npm = shutil.which("npm")
    if not npm:
        return None, f"npm is not installed and {directory} holds no install"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "processor-bench-peer",
        "private": True,
        "dependencies": SYNC_ENGINE_PACKAGES,
    }
    (directory / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"installing {SYNC_ENGINE_PACKAGES} into {directory}", flush=True)
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        tail = " ".join((error.stderr or error.stdout or "").strip().splitlines()[-3:])
        return None, f"npm install failed: {tail}"
    except subprocess.TimeoutExpired:
        return None, "npm install took more than 10 minutes"
    version = json.loads(package.read_text()).get("version")
    if version != SYNC_ENGINE_PACKAGES["@supabase/stripe-sync-engine"]:
        return None, f"npm installed stripe-sync-engine {version}"
    marker.write_text(json.dumps(SYNC_ENGINE_PACKAGES))
    return directory, "installed"


def peer_environment(engine_dir: Path, database_url: str, pool_max: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_"))}
    env.update(
        SYNC_ENGINE_DIR=str(engine_dir),
        DATABASE_URL=database_url,
        SYNC_SCHEMA=SYNC_ENGINE_SCHEMA,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_DEAD_PORT=str(DEAD_PORT),
        POOL_MAX=str(pool_max),
        NODE_ENV="production",
    )
    return env


def migrate_peer(env: dict[str, str], url: str) -> None:
    """The peer's own migrations (its `runMigrations`), then a check that they made its tables."""
    subprocess.run(["node", str(SYNC_ENGINE_SERVER), "migrate"], env=env, timeout=120, check=True)
    engine = make_engine(own_connection(url))
    try:
        with engine.connect() as connection:
            tables = connection.scalar(
                text(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = :schema"
                    " AND table_name IN ('payment_intents', 'setup_intents')"
                ),
                {"schema": SYNC_ENGINE_SCHEMA},
            )
    finally:
        engine.dispose()
    if tables != 2:
        raise RuntimeError("the sync engine's migrations did not create its tables")


def peer_rows(url: str) -> int:
    """Rows in the peer's payment_intents and setup_intents: one per stored event of the mix."""
    engine = make_engine(own_connection(url))
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        f'SELECT (SELECT count(*) FROM "{SYNC_ENGINE_SCHEMA}".payment_intents)'
                        f' + (SELECT count(*) FROM "{SYNC_ENGINE_SCHEMA}".setup_intents)'
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


# -- PostgreSQL's CPU ------------------------------------------------------------------------


BENCH_APPLICATION = "bench_webhooks"  # this script's own connections, left out of the CPU
# Processes of the server that work for every database (WAL, checkpoints, dirty buffers).
SHARED_BACKEND_TYPES = ("checkpointer", "background writer", "walwriter")


def own_connection(url: str) -> str:
    """`url` with this script's application name, so its backends are not counted."""
    if not url.startswith("postgresql"):
        return url
    return (
        make_url(url)
        .update_query_dict({"application_name": BENCH_APPLICATION})
        .render_as_string(hide_password=False)
    )


@dataclass
class PostgresSnapshot:
    ticks: dict[int, int]  # pid -> CPU ticks of every process of the server
    reaped: int  # CPU ticks of the server's children that have exited
    activity: dict[int, tuple[str | None, str, str]]  # pid -> database, type, application


@dataclass
class PostgresCpu:
    """CPU time PostgreSQL spends on a run, from /proc: the backends connected to the run's
    database (not this script's own), the WAL writer, checkpointer and background writer
    (shared by every database: the machine is shared, so their share is an upper bound), and
    the postmaster itself (it forks the backends). Backends of other databases are left out.

    A backend that exits during the run takes its CPU since the first snapshot with it
    (reported as `postgres_backends_exited`); `postgres_server_cpu_us_per_event` is the whole
    server's, exited children included, for comparison."""

    database: str
    engine: Engine = field(init=False)
    connection: Connection = field(init=False)
    postmaster: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(own_connection(f"{POSTGRES_SERVER}/postgres"), pool_size=1)
        self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        monitor = int(self.connection.scalar(text("SELECT pg_backend_pid()")) or 0)
        try:
            stat = Path(f"/proc/{monitor}/stat").read_text().rsplit(")", 1)[1].split()
            self.postmaster = int(stat[1])
        except FileNotFoundError:  # PostgreSQL runs elsewhere: its CPU is out of sight
            self.postmaster = None

    def snapshot(self) -> PostgresSnapshot | None:
        if self.postmaster is None:
            return None
        activity = {
            int(pid): (database, backend_type, application)
            for pid, database, backend_type, application in self.connection.execute(
                text("SELECT pid, datname, backend_type, application_name FROM pg_stat_activity")
            )
        }
        ticks: dict[int, int] = {}
        for pid in _process_tree(self.postmaster):
            value = _cpu_ticks(pid)
            if value is not None:
                ticks[pid] = value
        reaped = (_cpu_ticks(self.postmaster, reaped_children=True) or 0) - ticks.get(
            self.postmaster, 0
        )
        return PostgresSnapshot(ticks, reaped, activity)

    def _serves_run(self, snapshot: PostgresSnapshot, pid: int) -> bool:
        if pid == self.postmaster:
            return True
        database, backend_type, application = snapshot.activity.get(pid, (None, "", ""))
        if database == self.database:
            return application != BENCH_APPLICATION
        return database is None and backend_type in SHARED_BACKEND_TYPES

    def used(
        self, before: PostgresSnapshot | None, after: PostgresSnapshot | None
    ) -> dict[str, Any] | None:
        """Seconds of CPU between two snapshots: the run's, and the whole server's."""
        if before is None or after is None:
            return None
        clock = os.sysconf("SC_CLK_TCK")
        run = sum(
            after.ticks[pid] - before.ticks.get(pid, 0)
            for pid in after.ticks
            if self._serves_run(after, pid)
        )
        exited = sum(
            1
            for pid in before.ticks
            if pid not in after.ticks and pid != self.postmaster and self._serves_run(before, pid)
        )
        server = (
            sum(after.ticks.values()) + after.reaped - sum(before.ticks.values()) - before.reaped
        )
        return {"seconds": run / clock, "server_seconds": server / clock, "exited": exited}

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


# -- load ------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  requests = {}
  local threads = tonumber(args[2])
  local index = 0
  for line in io.lines(args[1]) do
    if index % threads == id then
      local signature, body = line:match("^([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", "/webhooks/stripe",
        {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
    end
    index = index + 1
  end
  position = 0
end
function request()
  position = position % #requests + 1
  return requests[position]
end
function done(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests":%d,"seconds":%.3f,"non2xx":%d,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class Result:
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def write_events(path: Path, count: int, tag: str, mix: str) -> None:
    with path.open("w") as handle:
        for header, body in signed_events(count, tag, mix):
            handle.write(f"{header}\t{body}\n")


def run_wrk(url: str, events: Path, connections: int, seconds: int, workdir: Path) -> Result:
    script = workdir / "webhooks.lua"
    script.write_text(WRK_SCRIPT)
    threads = 1
    output = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + "/webhooks/stripe",
            "--",
            str(events),
            str(threads),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("WRK "))
    return Result(**json.loads(line[4:]))


def run_httpx(url: str, events: Path, connections: int, seconds: int, _workdir: Path) -> Result:
    """The same load from an asyncio client in a second process (used when wrk is missing)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bench_webhooks",
            "--httpx-client",
            url,
            str(events),
            str(connections),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    return Result(**json.loads(done.stdout.strip().splitlines()[-1]))


async def _httpx_load(url: str, events: Path, connections: int, seconds: int) -> Result:
    lines = [line.rstrip("\n").split("\t", 1) for line in events.open()]
    latencies: list[float] = []
    non2xx = errors = 0
    position = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal position, non2xx, errors
            while time.perf_counter() < deadline and position < len(lines):
                header, body = lines[position]
                position += 1
                sent = time.perf_counter()
                try:
                    answer = await client.post(
                        url + "/webhooks/stripe",
                        content=body,
                        headers={"Content-Type": "application/json", "Stripe-Signature": header},
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                non2xx += not 200 <= answer.status_code < 300

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Result(len(latencies), elapsed, non2xx, errors, cuts[49] * 1000, cuts[98] * 1000)


# -- databases -------------------------------------------------------------------------------


def fresh_database(kind: str, workdir: Path, *, migrate: bool = True) -> tuple[str, Any]:
    """A new SQLite file or PostgreSQL database (migrated to head unless `migrate` is off),
    and a function that drops it (None for SQLite)."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{secrets.token_hex(4)}.db'}"
        drop = None
    else:
        name = f"bench_webhooks_{os.getpid()}_{secrets.token_hex(4)}"
        admin = make_engine(f"{POSTGRES_SERVER}/postgres")
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        url = f"{POSTGRES_SERVER}/{name}"
    if migrate:
        engine = make_engine(url)
        upgrade_to_head(engine)
        engine.dispose()
    return url, drop


def stored_events(url: str) -> int:
    engine = make_engine(own_connection(url))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(StripeEvent)) or 0)
    finally:
        engine.dispose()


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    key: str  # as given to --targets: bare, peer, pg1, sqlite2, ...
    kind: str  # bare | peer | postgresql | sqlite
    workers: int

    @property
    def label(self) -> str:
        if self.kind == "bare":
            return "bare" if self.workers == 1 else f"bare, {self.workers} workers"
        if self.kind == "peer":
            return "peer (PostgreSQL)"
        database = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[self.kind]
        plural = "s" if self.workers > 1 else ""
        return f"receiver, {database}, {self.workers} worker{plural}"


def parse_target(key: str) -> Target:
    match = re.fullmatch(r"(bare|peer|pg|sqlite)(\d*)", key)
    if not match or (match[1] == "peer" and match[2]) or match[2] in ("0",):
        raise argparse.ArgumentTypeError(
            f"{key!r}: expected bare, peer, pgN or sqliteN (N workers, e.g. pg1, sqlite2)"
        )
    kind = {"pg": "postgresql"}.get(match[1], match[1])
    return Target(key, kind, int(match[2] or 1))


@dataclass
class Prepared:
    """A started target: its server, how to count what it stored, and its database."""

    server: Server
    count_stored: Callable[[], int] | None
    database: str | None  # PostgreSQL database name, for its CPU
    cleanup: list[Callable[[], None]]


def prepare(target: Target, args: argparse.Namespace, workdir: Path) -> Prepared:
    cleanup: list[Callable[[], None]] = []
    try:
        if target.kind == "bare":
            env = app_environment(f"sqlite:///{workdir / 'unused.db'}")
            server = start_server("tests.benchmarks.bench_webhooks:bare_app", target.workers, env)
            return Prepared(server, None, None, [server.stop])
        if target.kind == "peer":
            url, drop = fresh_database("postgresql", workdir, migrate=False)
            cleanup.append(drop)
            node_url = make_url(url).set(drivername="postgresql")
            env = peer_environment(
                args.peer_dir, node_url.render_as_string(hide_password=False), args.peer_pool
            )
            migrate_peer(env, url)
            server = start_process(
                ["node", str(SYNC_ENGINE_SERVER), "serve"], env, "the sync engine", 0
            )
            cleanup.insert(0, server.stop)
            # With the realistic mix the objects' ids repeat between warm-up and run.
            count = (lambda: peer_rows(url)) if args.mix == "intents" else None
            return Prepared(server, count, make_url(url).database, cleanup)
        url, drop = fresh_database(target.kind, workdir)
        if drop is not None:
            cleanup.append(drop)
        server = start_receiver(target.workers, app_environment(url))
        cleanup.insert(0, server.stop)
        database = make_url(url).database if target.kind == "postgresql" else None
        return Prepared(server, lambda: stored_events(url), database, cleanup)
    except BaseException:
        for step in cleanup:
            step()
        raise


def measure_target(target: Target, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    load = run_wrk if args.client == "wrk" else run_httpx
    tag = secrets.token_hex(3)
    events = workdir / f"events-{tag}.tsv"
    warmup = workdir / f"warmup-{tag}.tsv"
    write_events(events, args.events, tag, args.mix)
    write_events(warmup, 2000, f"w{tag}", args.mix)
    prepared = prepare(target, args, workdir)
    postgres = PostgresCpu(prepared.database) if prepared.database else None
    try:
        load(prepared.server.url, warmup, args.connections, 1, workdir)
        before = prepared.count_stored() if prepared.count_stored else None
        pg_before = postgres.snapshot() if postgres else None
        cpu_before = prepared.server.cpu_seconds()
        result = load(prepared.server.url, events, args.connections, args.seconds, workdir)
        cpu = prepared.server.cpu_seconds() - cpu_before
        pg_used = postgres.used(pg_before, postgres.snapshot()) if postgres else None
        stored = None
        if prepared.count_stored is not None and before is not None:
            stored = prepared.count_stored() - before
    finally:
        if postgres:
            postgres.close()
        for step in prepared.cleanup:
            step()
        events.unlink()
        warmup.unlink()
    per_event = 1e6 / max(result.requests, 1)
    acknowledged = result.requests - result.non2xx
    row: dict[str, Any] = {
        "target": target.key,
        "label": target.label,
        "mix": args.mix,
        "events_per_s": round(result.per_second),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "server_cpu_us_per_event": round(cpu * per_event),
        "postgres_cpu_us_per_event": None,
        "requests": result.requests,
        "non2xx": result.non2xx,
        "errors": result.errors,
        "stored": stored,
        "wrapped": acknowledged > args.events,
    }
    if pg_used is not None:
        row["postgres_cpu_us_per_event"] = round(pg_used["seconds"] * per_event)
        row["postgres_server_cpu_us_per_event"] = round(pg_used["server_seconds"] * per_event)
        if pg_used["exited"]:
            row["postgres_backends_exited"] = pg_used["exited"]
    # wrk stops counting with up to one request per connection still in flight, after the
    # warm-up and after the run: those may be stored without being counted as answered.
    if (
        stored is not None
        and not row["wrapped"]
        and not (acknowledged <= stored <= acknowledged + 2 * args.connections)
    ):
        row["mismatch"] = f"{acknowledged} acknowledged, {stored} stored"
    return row


def measure(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """Every target, in order, `args.rounds` times over: each round's rows, one after another."""
    rows: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        for target in args.targets:
            if target.kind == "peer" and args.peer_dir is None:
                row = {"target": target.key, "label": target.label, "skipped": args.peer_skip}
            else:
                try:
                    row = measure_target(target, args, workdir)
                except (RuntimeError, subprocess.SubprocessError) as error:
                    if target.kind != "peer":
                        raise
                    print(f"skipping the peer: {error}", flush=True)
                    row = {"target": target.key, "label": target.label, "skipped": str(error)}
            row["round"] = round_number
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


MEDIAN_FIELDS = (
    "events_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_event", "postgres_cpu_us_per_event"
)
SUMMED_FIELDS = ("requests", "non2xx", "stored")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target: the median of its rounds, and its rate and p99 as multiples of the
    peer's, each taken within a round (both ran minutes apart at most) and then the median
    of those. A round measures the machine as much as the code: a shared machine's pace
    drifts by more than the differences in question, and the peer meets the same drift."""
    peers = {
        row["round"]: row for row in rows if row["target"] == "peer" and "skipped" not in row
    }
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_target.setdefault(row["target"], []).append(row)
    summary = []
    for target, runs in by_target.items():
        measured = [run for run in runs if "skipped" not in run]
        if not measured:
            summary.append(runs[0])
            continue
        row = {"target": target, "label": runs[0]["label"], "rounds": len(measured)}
        for name in MEDIAN_FIELDS:
            values = [run[name] for run in measured if run[name] is not None]
            row[name] = statistics.median(values) if values else None
        for name in SUMMED_FIELDS:
            values = [run[name] for run in measured]
            row[name] = None if None in values else sum(values)
        row["postgres_backends_exited"] = any(
            run.get("postgres_backends_exited") for run in measured
        )
        if any("mismatch" in run for run in measured):
            row["mismatch"] = "; ".join(run["mismatch"] for run in measured if "mismatch" in run)
        if peers and target.startswith(("pg", "sqlite")):
            row["of_peer"] = _ratios(measured, peers, "events_per_s")
            row["p99_of_peer"] = _ratios(measured, peers, "p99_ms")
        summary.append(row)
    return summary


def _ratios(
    runs: list[dict[str, Any]], peers: dict[int, dict[str, Any]], field: str
) -> list[float]:
    """`field` of each run over the peer's in the same round, where the peer ran."""
    return [
        run[field] / peers[run["round"]][field]
        for run in runs
        if run["round"] in peers and peers[run["round"]][field]
    ]


def _multiple(ratios: list[float] | None) -> str:
    """A median multiple, with the range of the rounds' when there were several."""
    if not ratios:
        return ""
    median = f"{statistics.median(ratios):.2f}x"
    if len(ratios) == 1:
        return median
    return f"{median} ({min(ratios):.2f}-{max(ratios):.2f})"


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of `summarize`'s rows. `of peer` is the receiver's rate as a multiple
    of the peer's, `p99 of peer` its p99 as a multiple of the peer's (with several rounds:
    the median of the rounds' multiples, and their range): the form of the target (at least
    1.0x the rate, at most 1.5x the p99, PostgreSQL with one worker)."""
    lines = [
        "| target | events/s | of peer | p50 ms | p99 ms | p99 of peer | server CPU µs/event "
        "| PostgreSQL CPU µs/event | non-2xx | stored |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['label']} | skipped: {row['skipped']} |||||||||")
            continue
        postgres = row["postgres_cpu_us_per_event"]
        if postgres is None:
            postgres = ""
        else:
            postgres = f"{postgres:.0f}"
            if row["postgres_backends_exited"]:
                postgres = f"≥{postgres}"  # backends that exited took part of their CPU along
        if row["stored"] is None:
            stored = ""
        else:
            acknowledged = row["requests"] - row["non2xx"]
            stored = f"{row['stored']:,} of {acknowledged:,}"
            stored += " ✗" if "mismatch" in row else " ✓"
        lines.append(
            f"| {row['label']} | {row['events_per_s']:,.0f} | {_multiple(row.get('of_peer'))} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {_multiple(row.get('p99_of_peer'))} | "
            f"{row['server_cpu_us_per_event']:.0f} | {postgres} | {row['non2xx']} | {stored} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--httpx-client":
        url, events, connections, seconds = sys.argv[2:6]
        result = asyncio.run(_httpx_load(url, Path(events), int(connections), int(seconds)))
        print(json.dumps(result.__dict__))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--targets",
        nargs="+",
        type=parse_target,
        default=[parse_target(key) for key in DEFAULT_TARGETS],
        help=f"run in this order (default: {' '.join(DEFAULT_TARGETS)}); bareN, pgN, sqliteN: "
        "N uvicorn workers",
    )
    parser.add_argument(
        "--mix",
        choices=sorted(MIXES),
        default="intents",
        help="intents: full objects alternating payment_intent.payment_failed and "
        "setup_intent.succeeded (default); realistic: the receiver's own mix of six types",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=8, help="length of each measured run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the targets in order this many times over; the table gives medians",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=40_000,
        help="unique events generated per run (more than a run can send)",
    )
    parser.add_argument(
        "--peer-pool", type=int, default=10, help="the peer's pg pool size (its default: 10)"
    )
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    args = parser.parse_args()
    args.peer_dir = None
    if any(target.kind == "peer" for target in args.targets):
        args.peer_dir, args.peer_skip = install_sync_engine()
        if args.peer_dir is None:
            print(f"skipping the peer: {args.peer_skip}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as workdir:
        rows = measure(args, Path(workdir))
    print()
    print(table(summarize(rows)))
    if any("mismatch" in row for row in rows):
        raise SystemExit("some acknowledged events were not stored")


if __name__ == "__main__":
    main()
