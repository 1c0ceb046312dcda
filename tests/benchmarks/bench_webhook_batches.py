"""The webhook batches alone, in process: CPU per event and wall time per batch, no HTTP.

    python -m tests.benchmarks.bench_webhook_batches                     # PostgreSQL, batches of 16
    python -m tests.benchmarks.bench_webhook_batches --batch 32 --batches 200 --database sqlite

Verified events of bench_webhooks' default mix go through `WebhookBatcher.submit` on a uvloop
event loop, one batch at a time (a batch of `--batch` deliveries submitted together, awaited,
then the next), into a fresh database migrated to head. What it reports is the part of the
receiver's CPU that the database path costs, without uvicorn, wrk or the peer sharing the
machine: steadier than bench_webhooks for comparing two builds' batch code (run each build's
own copy alternately). The first `--warm-up` batches (prepared statements, caches) are not
counted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from processor.db.engine import make_engine
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.batcher import WebhookBatcher
from processor.webhooks.envelope import parse_event
from tests.benchmarks.bench_webhooks import fresh_database, signed_events


def deliveries(count: int) -> list[Delivery]:
    tag = secrets.token_hex(3)
    return [Delivery(parse_event(body), 0) for _signature, body in signed_events(count, tag)]


async def run_batches(
    batcher: WebhookBatcher, batches: list[list[Delivery]], warm_up: int
) -> tuple[float, float]:
    """CPU seconds and wall seconds of the batches after the first `warm_up`."""
    for batch in batches[:warm_up]:
        await asyncio.gather(*(batcher.submit(delivery) for delivery in batch))
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches[warm_up:]:
        outcomes = await asyncio.gather(*(batcher.submit(delivery) for delivery in batch))
        if set(outcomes) != {Outcome.PROCESSED}:
            raise SystemExit(f"a batch was not processed: {sorted({o.value for o in outcomes})}")
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--batch", type=int, default=16, help="deliveries per batch")
    parser.add_argument("--batches", type=int, default=300, help="measured batches")
    parser.add_argument("--warm-up", type=int, default=50, help="batches not measured")
    args = parser.parse_args()
    total = args.warm_up + args.batches
    events = deliveries(args.batch * total)
    batches = [events[n * args.batch : (n + 1) * args.batch] for n in range(total)]
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as workdir:
        url, drop = fresh_database(args.database, Path(workdir))
        engine = make_engine(url)
        batcher = WebhookBatcher(engine, lambda: datetime.now(UTC), batches_in_flight=1)

        async def measured() -> tuple[float, float]:
            try:
                return await run_batches(batcher, batches, args.warm_up)
            finally:
                await batcher.aclose()

        try:
            cpu, wall = uvloop.run(measured())
        finally:
            engine.dispose()
            if drop is not None:
                drop()
    measured_events = args.batches * args.batch
    print(
        f"{args.database}, batches of {args.batch}: {1e6 * cpu / measured_events:.0f} µs CPU"
        f" per event, {1e3 * wall / args.batches:.2f} ms per batch"
    )


if __name__ == "__main__":
    main()
