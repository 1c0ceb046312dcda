"""The writer process: deliveries from an event loop stored by a child, 503 when it dies."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select

from processor.db.models import StripeEvent
from processor.errors import PayloadInvalid, SignatureInvalid
from processor.webhooks import writer_process
from processor.webhooks.store import Outcome
from processor.webhooks.writer import Receipt, writer_threads_for
from processor.webhooks.writer_process import ChildProcessWriter
from tests.unit.webhooks.factories import body_of, payment_intent, signature, stripe_event

SECRET = "whsec_writer_process_test"


@pytest.fixture
def writer(engine: Engine) -> Iterator[ChildProcessWriter]:
    writer = ChildProcessWriter(
        engine.url.render_as_string(hide_password=False),
        (SECRET,),
        300,
        channels=writer_threads_for(engine),
    )
    yield writer
    writer.close()


def signed(event_id: str) -> tuple[bytes, str]:
    intent = payment_intent(f"pi_{event_id}")
    body = body_of(stripe_event("payment_intent.succeeded", intent, event_id=event_id))
    return body.encode(), signature(body, SECRET)


def store_all(
    writer: ChildProcessWriter, deliveries: list[tuple[bytes, str]]
) -> list[Receipt | BaseException]:
    """`store` every delivery at once from a fresh event loop, in a thread of its own (the
    browser tests keep a loop running in the main thread)."""

    async def run() -> list[Any]:
        calls = [writer.store(body, header) for body, header in deliveries]
        return await asyncio.gather(*calls, return_exceptions=True)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result(timeout=60)


def test_a_burst_is_stored_by_the_child_and_each_delivery_answered(
    writer: ChildProcessWriter, engine: Engine
) -> None:
    deliveries = [signed(f"evt_child{n}") for n in range(40)]
    deliveries.append(deliveries[0])  # a redelivery within the burst
    deliveries.append((deliveries[1][0], "t=1,v1=00"))  # a forged signature
    deliveries.append((b"not json", signature("not json", SECRET)))

    answers = store_all(writer, deliveries)

    outcomes = [answer.outcome for answer in answers[:41]]  # type: ignore[union-attr]
    assert outcomes.count(Outcome.PROCESSED) == 40
    assert outcomes[40] is Outcome.DUPLICATE
    assert isinstance(answers[41], SignatureInvalid)  # refused before it reaches the child
    assert isinstance(answers[42], PayloadInvalid)  # refused by the child, raised here
    assert answers[0].event_id == "evt_child0"  # type: ignore[union-attr]
    with engine.connect() as connection:
        rows = connection.execute(select(StripeEvent.id, StripeEvent.delivery_count)).all()
    assert len(rows) == 40 and sum(count for _id, count in rows) == 41


def test_every_event_loop_gets_its_own_channels_to_one_child(writer: ChildProcessWriter) -> None:
    first = store_all(writer, [signed("evt_loop_one")])
    child = writer._child
    second = store_all(writer, [signed("evt_loop_two"), signed("evt_loop_one")])

    assert [a.outcome for a in first + second] == [  # type: ignore[union-attr]
        Outcome.PROCESSED,
        Outcome.PROCESSED,
        Outcome.DUPLICATE,
    ]
    assert writer._child is child  # the second loop reached the same process


def test_a_dead_child_answers_503_and_the_next_batch_starts_another(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_process, "RESTART_INTERVAL_SECONDS", 0)
    # One channel, so every delivery goes through the one that saw the child die.
    writer = ChildProcessWriter(
        engine.url.render_as_string(hide_password=False), (SECRET,), 300, channels=1
    )

    async def run() -> list[Any]:
        answers = [await writer.store(*signed("evt_before"))]
        assert writer._child is not None
        writer._child.process.kill()
        writer._child.process.wait()
        answers.append(await writer.store(*signed("evt_during")))
        answers.append(await writer.store(*signed("evt_after")))
        return answers

    try:
        with ThreadPoolExecutor(1) as pool:
            stored = pool.submit(lambda: asyncio.run(run())).result(timeout=60)
    finally:
        writer.close()

    assert [answer.outcome for answer in stored] == [
        Outcome.PROCESSED,
        Outcome.UNAVAILABLE,  # in flight when the child died: Stripe delivers it again
        Outcome.PROCESSED,
    ]
    with engine.connect() as connection:
        ids = set(connection.scalars(select(StripeEvent.id)))
    assert ids == {"evt_before", "evt_after"}


def test_a_child_that_keeps_dying_is_not_restarted_for_every_batch(
    writer: ChildProcessWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_process, "RESTART_INTERVAL_SECONDS", 3600)
    store_all(writer, [signed("evt_first_child")])
    assert writer._child is not None
    writer._child.process.kill()
    writer._child.process.wait()

    answers = store_all(writer, [signed("evt_soon")])  # a fresh loop asks for a channel

    assert [answer.outcome for answer in answers] == [Outcome.UNAVAILABLE]  # type: ignore[union-attr]


def test_close_stops_the_child_and_later_deliveries_get_503(writer: ChildProcessWriter) -> None:
    store_all(writer, [signed("evt_open")])
    child = writer._child
    assert child is not None

    writer.close()

    assert child.process.returncode == 0
    answers = store_all(writer, [signed("evt_closed")])
    assert [answer.outcome for answer in answers] == [Outcome.UNAVAILABLE]  # type: ignore[union-attr]


def test_a_child_that_cannot_start_gets_503s_and_is_not_started_for_every_batch(
    writer: ChildProcessWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_process, "RESTART_INTERVAL_SECONDS", 3600)
    spawned: list[object] = []
    spawn = writer_process._spawn

    def counting_spawn(config: dict[str, Any]) -> Any:
        spawned.append(config)
        return spawn(config)

    monkeypatch.setattr(writer_process, "_spawn", counting_spawn)
    monkeypatch.setattr(
        writer_process, "CHILD_COMMAND", (sys.executable, "-c", "raise SystemExit(3)")
    )

    answers = store_all(writer, [signed(f"evt_never{n}") for n in range(3)])
    answers += store_all(writer, [signed("evt_never_again")])

    assert {answer.outcome for answer in answers} == {Outcome.UNAVAILABLE}  # type: ignore[union-attr]
    assert len(spawned) == 1  # later channels found it dead within the restart interval
