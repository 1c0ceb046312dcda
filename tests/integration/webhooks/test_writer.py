"""The writer thread: batches share a transaction, each delivery gets its own answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select

from processor.clock import utc_now
from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.models import StripeEvent
from processor.errors import SignatureInvalid
from processor.webhooks.store import Outcome
from processor.webhooks.writer import Receipt, WebhookWriter
from tests.unit.webhooks.factories import body_of, payment_intent, signature, stripe_event

SECRET = "whsec_writer_test"
T = TypeVar("T")


def test_sqlite_connections_of_the_writer_sync_every_commit(tmp_path: Path) -> None:
    # A 2xx promises the event survives a power loss: the WAL must be synced at each commit.
    engine = make_engine(f"sqlite:///{tmp_path / 'durable.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_a_burst_is_stored_and_each_delivery_answered(engine: Engine) -> None:
    writer = WebhookWriter(engine, (SECRET,), 300, utc_now)
    try:
        bodies = [
            body_of(stripe_event("payment_intent.succeeded", payment_intent(f"pi_w{n}")))
            for n in range(40)
        ]
        futures = [writer.submit(body.encode(), signature(body, SECRET)) for body in bodies]
        futures.append(writer.submit(bodies[0].encode(), signature(bodies[0], SECRET)))
        refused = writer.submit(bodies[1].encode(), "t=1,v1=00")
        wait([*futures, refused], timeout=30)
    finally:
        writer.close()
    outcomes = [future.result().outcome for future in futures]
    assert outcomes.count(Outcome.PROCESSED) == 40
    assert outcomes[-1] is Outcome.DUPLICATE
    with pytest.raises(SignatureInvalid):
        refused.result()
    with engine.connect() as connection:
        rows = connection.execute(select(StripeEvent.id, StripeEvent.delivery_count)).all()
    assert len(rows) == 40 and sum(count for _id, count in rows) == 41


def test_a_writer_whose_database_is_gone_answers_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'missing.db'}")
    writer = WebhookWriter(engine, (SECRET,), 300, utc_now)
    try:
        body = body_of(stripe_event("payment_intent.succeeded", payment_intent("pi_gone")))
        receipt = writer.submit(body.encode(), signature(body, SECRET)).result(timeout=30)
    finally:
        writer.close()
        engine.dispose()
    assert receipt.outcome is Outcome.UNAVAILABLE


def test_two_writers_on_one_sqlite_file_store_an_event_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    first, second = make_engine(url), make_engine(url)
    upgrade_to_head(first)
    writers = [WebhookWriter(e, (SECRET,), 300, utc_now) for e in (first, second)]
    try:
        body = body_of(stripe_event("payment_intent.succeeded", payment_intent("pi_two")))
        futures = [w.submit(body.encode(), signature(body, SECRET)) for w in writers]
        outcomes = sorted(f.result(timeout=30).outcome.value for f in futures)
    finally:
        for writer in writers:
            writer.close()
        first.dispose()
        second.dispose()
    assert outcomes == ["duplicate", "processed"]



class GatedClock:
    """A clock the writer thread waits on once, so the test can queue a batch behind it."""

    def __init__(self, fail: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def __call__(self) -> datetime:
        if not self.release.is_set():
            self.entered.set()
            self.release.wait(timeout=30)
        if self.fail:
            raise RuntimeError("the batch broke")
        return utc_now()


def in_own_thread(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run` in a thread of its own: the browser tests' sync Playwright keeps an event
    loop running in the main thread while their session lasts."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def signed(event_id: str) -> tuple[bytes, str]:
    intent = payment_intent(f"pi_{event_id}")
    body = body_of(stripe_event("payment_intent.succeeded", intent, event_id=event_id))
    return body.encode(), signature(body, SECRET)


def store_as_one_batch(
    writer: WebhookWriter, clock: GatedClock, deliveries: list[tuple[bytes, str]], cancel: int = -1
) -> tuple[list[Receipt | BaseException], int]:
    """`store` each delivery from one event loop while the writer thread is held by a first
    (concurrent) delivery, so they form one batch; cancel the caller at index `cancel`.
    Returns each caller's answer (the first delivery's last) and the loop's thread-safe calls."""

    async def run() -> tuple[list[Receipt | BaseException], int]:
        first = writer.submit(*signed("evt_first"))
        assert await asyncio.to_thread(clock.entered.wait, 30)
        loop = asyncio.get_running_loop()
        handoffs = 0
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> asyncio.Handle:
            nonlocal handoffs
            handoffs += 1
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        tasks = [asyncio.create_task(writer.store(body, header)) for body, header in deliveries]
        await asyncio.sleep(0)  # every task has queued its delivery
        if cancel >= 0:
            tasks[cancel].cancel()  # as a server may do for a client that went away
        clock.release.set()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        wait([first], timeout=30)  # answered before the batch behind it
        answers.append(first.exception() or first.result())
        return answers, handoffs

    return in_own_thread(run)


def test_a_batch_answers_its_event_loop_in_one_handoff(engine: Engine) -> None:
    clock = GatedClock()
    writer = WebhookWriter(engine, (SECRET,), 300, clock, threads=1)
    deliveries = [signed(f"evt_batch{n}") for n in range(10)]
    deliveries.append((deliveries[0][0], "t=1,v1=00"))  # refused: answered before the store
    try:
        answers, handoffs = store_as_one_batch(writer, clock, deliveries)
    finally:
        writer.close()
    assert [answer.outcome for answer in answers[:10]] == [Outcome.PROCESSED] * 10  # type: ignore[union-attr]
    assert isinstance(answers[10], SignatureInvalid)
    assert handoffs == 2  # the refusal, then the ten stored events together


def test_a_caller_that_stops_waiting_does_not_disturb_its_batch(engine: Engine) -> None:
    clock = GatedClock()
    writer = WebhookWriter(engine, (SECRET,), 300, clock, threads=1)
    deliveries = [signed(f"evt_gone{n}") for n in range(3)]
    try:
        answers, _handoffs = store_as_one_batch(writer, clock, deliveries, cancel=1)
        later = writer.submit(*signed("evt_later")).result(timeout=30)
    finally:
        writer.close()
    assert isinstance(answers[1], asyncio.CancelledError)
    outcomes = [answer.outcome for answer in (answers[0], answers[2], later)]  # type: ignore[union-attr]
    assert outcomes == [Outcome.PROCESSED] * 3


def test_a_batch_that_breaks_unexpectedly_still_answers_every_delivery(engine: Engine) -> None:
    clock = GatedClock(fail=True)
    writer = WebhookWriter(engine, (SECRET,), 300, clock, threads=1)
    try:
        answers, _handoffs = store_as_one_batch(
            writer, clock, [signed(f"evt_broken{n}") for n in range(4)]
        )
    finally:
        writer.close()
    assert [str(answer) for answer in answers] == ["the batch broke"] * 5
