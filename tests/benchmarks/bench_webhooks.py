"""Webhook receiver throughput and latency, against a bare Starlette endpoint in the same run.

    apt-get install -y wrk                                   # the load generator (Debian)
    python -m tests.benchmarks.bench_webhooks                # SQLite and PostgreSQL, 1 and 2 workers
    python -m tests.benchmarks.bench_webhooks --databases sqlite --workers 1 --seconds 5

For each database and worker count, uvicorn serves on 127.0.0.1 in its own process(es):
first a bare endpoint that only answers 200, then the real app (`processor.asgi`, production
settings, access log off). wrk, in another process, keeps 32 connections busy with unique,
really signed events of about 3.5 KB in a realistic mix of types, each sent once. Afterwards
the database is checked: every 2xx answer must have left exactly one stored event.
Without wrk, `--client httpx` drives the load from an asyncio process instead (slower, so it
measures less). Each run is bounded by `--seconds`; the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from stripe import WebhookSignature

from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.models import StripeEvent

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
# Share of each type in the generated stream: what a shop saving cards and charging them sees.
MIX = (
    ("payment_intent.succeeded", 20),
    ("payment_intent.payment_failed", 15),
    ("setup_intent.succeeded", 15),
    ("payment_method.attached", 15),
    ("payment_intent.created", 15),  # no handler: stored as ignored
    ("charge.succeeded", 20),  # no handler: stored as ignored
)
PADDING_FIELDS = 60  # Stripe objects carry many null fields; this brings bodies to ~3.5 KB


def bare_app() -> Starlette:
    """The baseline: the same server stack, an endpoint that reads the body and answers 200."""

    async def ok(request: Request) -> Response:
        await request.body()
        return Response(b'{"received":true}', media_type="application/json")

    return Starlette(routes=[Route("/webhooks/stripe", ok, methods=["POST"])])


# -- events ----------------------------------------------------------------------------------


def _object(event_type: str, n: int) -> dict[str, Any]:
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


def signed_events(count: int, tag: str) -> Iterator[tuple[str, str]]:
    """(Stripe-Signature, body) pairs: unique ids, signed now with the receiver's secret."""
    weights = [share for _type, share in MIX]
    types = [event_type for event_type, _share in MIX]
    now = int(time.time())
    for n in range(count):
        event_type = types[_pick(n, weights)]
        body = json.dumps(
            {
                "id": f"evt_{tag}{n:08d}",
                "object": "event",
                "api_version": "2026-10-28.endive",
                "created": now,
                "livemode": False,
                "pending_webhooks": 1,
                "type": event_type,
                "request": {"id": None, "idempotency_key": None},
                "data": {"object": _object(event_type, n)},
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and every process under it
        (workers, and their webhook writer processes)."""
        ticks = 0
        for pid in _process_tree(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # exited meanwhile
                continue
            ticks += int(fields[11]) + int(fields[12])
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


def start_server(target: str, workers: int, env: dict[str, str]) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/webhooks/stripe", content=b"{}", timeout=1)
            time.sleep(0.5 if workers > 1 else 0)  # let every worker finish starting
            return Server(process, url)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{target} did not start on port {port}")


def app_environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_PUBLISHABLE_KEY="pk_test_bench",
        STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        STRIPE_API_BASE="http://127.0.0.1:9",  # never called on the webhook path
        SECRET_KEY=secrets.token_hex(32),
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
        RUN_NOTIFIER="false",
        LOG_FORMAT="text",
    )
    return env


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


def write_events(path: Path, count: int, tag: str) -> None:
    with path.open("w") as handle:
        for header, body in signed_events(count, tag):
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


def fresh_database(kind: str, workdir: Path) -> tuple[str, Any]:
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
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url, drop


def stored_events(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(StripeEvent)) or 0)
    finally:
        engine.dispose()


def describe(url: str) -> str:
    return make_url(url).get_backend_name()


# -- the run ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    load = run_wrk if args.client == "wrk" else run_httpx
    rows: list[dict[str, Any]] = []
    for kind in args.databases:
        for workers in args.workers:
            url, drop = fresh_database(kind, workdir)
            env = app_environment(url)
            try:
                for name, target in (
                    ("bare endpoint", "tests.benchmarks.bench_webhooks:bare_app"),
                    ("receiver", "processor.asgi:app_from_environment"),
                ):
                    tag = secrets.token_hex(3)
                    events = workdir / f"events-{tag}.tsv"
                    write_events(events, args.events, tag)
                    warmup = workdir / f"warmup-{tag}.tsv"
                    write_events(warmup, 2000, f"w{tag}")
                    server = start_server(target, workers, env)
                    try:
                        load(server.url, warmup, args.connections, 1, workdir)
                        before = stored_events(url)
                        cpu_before = server.cpu_seconds()
                        result = load(server.url, events, args.connections, args.seconds, workdir)
                        cpu = server.cpu_seconds() - cpu_before
                    finally:
                        server.stop()
                    events.unlink()
                    warmup.unlink()
                    stored = stored_events(url) - before if name == "receiver" else None
                    acknowledged = result.requests - result.non2xx
                    row = {
                        "database": describe(url),
                        "workers": workers,
                        "endpoint": name,
                        "events_per_s": round(result.per_second),
                        "p50_ms": round(result.p50_ms, 2),
                        "p99_ms": round(result.p99_ms, 2),
                        "server_cpu_us_per_event": round(1e6 * cpu / max(result.requests, 1)),
                        "non2xx": result.non2xx,
                        "errors": result.errors,
                        "stored": stored,
                        "wrapped": acknowledged > args.events,
                    }
                    # wrk stops counting with up to one request per connection still in
                    # flight, after the warm-up and after the run: those may be stored
                    # without being counted as answered.
                    if (
                        stored is not None
                        and not row["wrapped"]
                        and not (acknowledged <= stored <= acknowledged + 2 * args.connections)
                    ):
                        row["mismatch"] = f"{acknowledged} acknowledged, {stored} stored"
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                if drop is not None:
                    drop()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table; `of bare` is the share of the bare endpoint's rate in the same setup,
    the form issue 5's target takes (at least 25%, with p99 under 50 ms)."""
    lines = [
        "| database | workers | endpoint | events/s | of bare | p50 ms | p99 ms | non-2xx "
        "| server CPU µs/event |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bare: dict[tuple[str, int], int] = {}
    for row in rows:
        setup = (row["database"], row["workers"])
        if row["endpoint"] == "bare endpoint":
            bare[setup] = row["events_per_s"]
        share = f"{row['events_per_s'] / bare[setup]:.0%}" if bare.get(setup) else ""
        lines.append(
            f"| {row['database']} | {row['workers']} | {row['endpoint']} | "
            f"{row['events_per_s']:,} | {share} | {row['p50_ms']} | {row['p99_ms']} | "
            f"{row['non2xx']} | {row['server_cpu_us_per_event']} |"
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
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=8, help="length of each measured run")
    parser.add_argument(
        "--events",
        type=int,
        default=40_000,
        help="unique events generated per run (more than a run can send)",
    )
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as workdir:
        rows = measure(args, Path(workdir))
    print()
    print(table(rows))
    if any("mismatch" in row for row in rows):
        raise SystemExit("some acknowledged events were not stored")


if __name__ == "__main__":
    main()
