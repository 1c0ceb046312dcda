"""Sandbox throughput: simple API requests per second on one core.

    python -m tests.benchmarks.bench_sandbox                 # in-process (ASGI), 5,000 requests
    python -m tests.benchmarks.bench_sandbox --http          # uvicorn child on one core, loopback

In-process mode drives the ASGI app straight from httpx's ASGITransport on one event loop,
pinned to one CPU: request parsing, authentication, idempotency, the resource, events and the
JSON answer, without sockets. `--http` serves the app with uvicorn in a child process pinned
to one core and loads it over loopback from this process (several client threads), so it
includes HTTP parsing. The target is at least 1,000 requests/s either way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from processor.sandbox import create_sandbox_app
from tests.fixtures.servers import free_port

SECRET_KEY = "sk_test_bench"
HEADERS = {"Authorization": f"Bearer {SECRET_KEY}", "Stripe-Version": "2026-10-28.endive"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TARGET = 1_000


def pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def report(name: str, count: int, seconds: float) -> float:
    rate = count / seconds
    verdict = "ok" if rate >= TARGET else "BELOW TARGET"
    print(f"{name:<44} {count:>6} requests {seconds:7.2f} s {rate:9,.0f} req/s  {verdict}")
    return rate


async def in_process(count: int) -> list[float]:
    app = create_sandbox_app(secret_key=SECRET_KEY)
    transport = httpx.ASGITransport(app=app)
    rates = []
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        made = await client.post(
            "/v1/customers", headers={**HEADERS, **FORM}, content="email=a@b.c"
        )
        customer_id = made.json()["id"]

        started = time.perf_counter()
        for _ in range(count):
            answer = await client.get(f"/v1/customers/{customer_id}", headers=HEADERS)
            assert answer.status_code == 200
        rates.append(report("GET /v1/customers/{id}", count, time.perf_counter() - started))

        started = time.perf_counter()
        for index in range(count):
            answer = await client.post(
                "/v1/customers",
                headers={**HEADERS, **FORM, "Idempotency-Key": str(uuid.uuid4())},
                content=f"email=c{index}%40example.com&metadata[n]={index}",
            )
            assert answer.status_code == 200
        rates.append(
            report(
                "POST /v1/customers (+ event, idempotency key)",
                count,
                time.perf_counter() - started,
            )
        )

        started = time.perf_counter()
        for _ in range(count // 5):
            answer = await client.get("/v1/customers?limit=10", headers=HEADERS)
            assert answer.status_code == 200
        rates.append(
            report("GET /v1/customers?limit=10", count // 5, time.perf_counter() - started)
        )
    app.state.sandbox.close()
    return rates


SERVER = """
import os, uvicorn
from processor.sandbox import create_sandbox_app
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
uvicorn.run(create_sandbox_app(secret_key=%r), host="127.0.0.1", port=%d, log_level="warning",
            access_log=False)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(count: int, threads: int) -> list[float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER % (SECRET_KEY, port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v3/stripe.js", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        customer_id = httpx.post(
            f"{url}/v1/customers", headers=HEADERS, data={"email": "a@b.c"}
        ).json()["id"]

        def worker(share: int) -> None:
            with httpx.Client(base_url=url, headers=HEADERS) as client:
                for _ in range(share):
                    assert client.get(f"/v1/customers/{customer_id}").status_code == 200

        done = count // threads * threads
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, [count // threads] * threads))
        wall = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
        # The clients share the machine with the server, so wall-clock throughput is a floor;
        # requests per CPU-second of the server is what one dedicated core sustains.
        report(f"HTTP GET /v1/customers/{{id}} ({threads} clients), wall", done, wall)
        return [report("  per CPU-second of the server process", done, server_cpu)]
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--http", action="store_true", help="uvicorn child on one core")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if args.http:
        rates = over_http(args.requests, args.threads)
    else:
        core = pin_to_one_core()
        print(f"in-process, one event loop pinned to CPU {core}")
        rates = asyncio.run(in_process(args.requests))
    return 0 if min(rates) >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
