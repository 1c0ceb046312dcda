"""What the connection bounds cost a request: `BodyDeadline` around a trivial ASGI app.

    python -m tests.benchmarks.bench_body_deadline

Drives the app in-process on one event loop, alternating the bare app and the same app behind
`BodyDeadline` so that both see the same machine, and prints the time per POST of each and the
difference. The webhook receiver spends several hundred microseconds of CPU per event, so the
deadline's share is the difference divided by that.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from processor.web.connections import BodyDeadline

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/webhooks/stripe", "headers": []}
BODY: Message = {"type": "http.request", "body": b"x" * 3000, "more_body": False}


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def receive() -> Message:
    return BODY


async def send(_message: Message) -> None:
    return None


async def microseconds_per_request(app: ASGIApp, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app(SCOPE, receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def measure(rounds: int, requests: int) -> tuple[list[float], list[float]]:
    guarded = BodyDeadline(bare, seconds=10)
    without: list[float] = []
    with_deadline: list[float] = []
    for _ in range(rounds):
        without.append(await microseconds_per_request(bare, requests))
        with_deadline.append(await microseconds_per_request(guarded, requests))
    return without, with_deadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    without, with_deadline = asyncio.run(measure(args.rounds, args.requests))
    bare_us, guarded_us = statistics.median(without), statistics.median(with_deadline)
    print(f"bare app           {bare_us:6.2f} µs/POST (median of {args.rounds})")
    print(f"with BodyDeadline  {guarded_us:6.2f} µs/POST")
    print(f"the deadline costs {guarded_us - bare_us:6.2f} µs per POST")


if __name__ == "__main__":
    main()
