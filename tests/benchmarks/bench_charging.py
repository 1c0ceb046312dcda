"""Batch charging throughput: N charges through `processor charge --file` against the sandbox.

    python -m tests.benchmarks.bench_charging                       # 2,000 charges, SQLite
    python -m tests.benchmarks.bench_charging --database-url postgresql://postgres@127.0.0.1/bench

The sandbox runs in this process on a loopback port with added latency and its own rate limit
(a 429 beyond it, as Stripe answers); the charger runs as the real command in a second process,
with its client-side limit at the same rate. The rate allows N / rate seconds; the target is to
finish within 10% of that, with every charge made exactly once.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import stripe
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from processor.charging.batch import default_concurrency
from processor.config import normalise_database_url
from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.models import Charge
from processor.sandbox import Sandbox, create_sandbox_app
from tests.fixtures.servers import LiveServer

SECRET_KEY = "sk_test_bench"


def make_customers(client: stripe.StripeClient, count: int) -> list[tuple[str, str]]:
    """`count` customers, each with a saved Visa card (two API calls each, in parallel)."""

    def one(index: int) -> tuple[str, str]:
        customer = client.v1.customers.create({"email": f"bench{index}@example.com"})
        method = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
        return customer.id, method.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def prepare_database(url: str | None, workdir: Path) -> str:
    """A fresh, migrated database: a SQLite file, or `url`'s database created anew."""
    if url is None:
        url = f"sqlite:///{workdir / 'bench.db'}"
    url = normalise_database_url(url)
    if make_url(url).get_backend_name() == "postgresql":
        _postgres_admin(
            url, "DROP DATABASE IF EXISTS {name} WITH (FORCE)", "CREATE DATABASE {name}"
        )
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    if make_url(url).get_backend_name() == "postgresql":
        _postgres_admin(url, "DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _postgres_admin(url: str, *statements: str) -> None:
    name = f'"{make_url(url).database}"'
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for statement in statements:
            connection.execute(text(statement.format(name=name)))
    admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s, both sides")
    parser.add_argument("--concurrency", type=int, help="default: the command's own default")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--profile", help="write a cProfile of the charging process here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-charging-"))
    app = create_sandbox_app(secret_key=SECRET_KEY)
    sandbox: Sandbox = app.state.sandbox
    server = LiveServer(app).start()
    database_url: str | None = None
    try:
        client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": server.url})
        started = time.monotonic()
        customers = make_customers(client, args.charges)
        print(f"set-up: {args.charges} customers with saved cards in "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip
        batch = workdir / "charges.csv"
        rows = ["reference,customer,amount,currency,payment_method"]
        rows += [
            f"bench-{index},{customer},{1000 + index % 500},usd,{method}"
            for index, (customer, method) in enumerate(customers)
        ]
        batch.write_text("\n".join(rows) + "\n")
        database_url = prepare_database(args.database_url, workdir)

        sandbox.set_latency(args.latency)
        sandbox.set_rate_limit(args.rate)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            STRIPE_API_BASE=server.url,
            STRIPE_SECRET_KEY=SECRET_KEY,
            SANDBOX="true",
        )
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        command = [sys.executable, *profile, "-m", "processor", "charge", "--file", str(batch),
                   "--rate", str(args.rate)]  # fmt: skip
        if args.concurrency:
            command += ["--concurrency", str(args.concurrency)]
        started = time.monotonic()
        sandbox_cpu = time.process_time()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, env=env, cwd=workdir, capture_output=True, text=True, check=False
        )
        wall = time.monotonic() - started
        sandbox_cpu = time.process_time() - sandbox_cpu
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        charger_cpu = (children.ru_utime + children.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime
        )
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n")
            return 1
        match = re.search(r"(\d+) charges in ([\d.]+) s", done.stdout)
        batch_seconds = float(match.group(2)) if match else float("nan")

        keys = [attempt.idempotency_key for attempt in sandbox.charge_attempts]
        engine = make_engine(database_url)
        with engine.connect() as connection:
            succeeded = connection.scalar(
                select(func.count()).select_from(Charge).where(Charge.status == "succeeded")
            )
            sent = connection.scalar(select(func.sum(Charge.attempt_count)))
            created = sorted(connection.scalars(select(Charge.created_at)))
            finished = connection.scalar(select(func.max(Charge.completed_at)))
        engine.dispose()
    finally:
        server.stop()
        sandbox.close()
        if database_url is not None:
            drop_database(database_url)

    allowed = args.charges / args.rate
    print(f"database: {make_url(database_url).get_backend_name()}; latency {args.latency * 1000:.0f} ms; "
          f"rate limit {args.rate:g}/s (client and sandbox); "
          f"concurrency {args.concurrency or default_concurrency(args.rate)}")  # fmt: skip
    print(f"charged: {succeeded}/{args.charges} succeeded; sandbox charges {len(keys)}, "
          f"distinct keys {len(set(keys))}; requests sent {sent} (retries {sent - args.charges})")  # fmt: skip
    print(f"batch: {batch_seconds:.2f} s ({args.charges / batch_seconds:.1f} charges/s); "
          f"command wall time {wall:.2f} s; the limit allows {allowed:.1f} s")  # fmt: skip
    first = created[0]
    per_second = [0] * (int((created[-1] - first).total_seconds()) + 1)
    for moment in created:
        per_second[int((moment - first).total_seconds())] += 1
    print(f"pace: first to last pending row {(created[-1] - first).total_seconds():.2f} s, "
          f"then {(finished - created[-1]).total_seconds():.2f} s to the last answer; rows per "
          f"second min {min(per_second[:-1] or per_second)} max {max(per_second)}")  # fmt: skip
    print(f"cpu: charging process {charger_cpu:.1f} s ({charger_cpu / args.charges * 1000:.1f} ms/charge"
          f", start-up included); sandbox {sandbox_cpu:.1f} s")  # fmt: skip
    ok = (
        succeeded == args.charges
        and len(keys) == len(set(keys)) == args.charges
        and batch_seconds <= allowed * 1.10
    )
    print("PASS" if ok else "FAIL", f"(target: within 10% of {allowed:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
