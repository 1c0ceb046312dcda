"""Property: any shuffled, duplicated delivery of an event history ends in the in-order state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.models import (
    Base,
    Charge,
    Notification,
    PaymentMethod,
    RecoveryCase,
    SetupAttempt,
    StripeEvent,
)
from processor.webhooks.apply import Delivery, Outcome
from processor.webhooks.envelope import parse_event
from processor.webhooks.store import record_events
from tests.fixtures.database import FakeClock
from tests.fixtures.events import (
    CREATED,
    body_of,
    card_method,
    decline,
    payment_intent,
    sepa_method,
    setup_intent,
    stripe_event,
)

SETUP_PATHS = [
    ["requires_action", "succeeded"],
    ["succeeded"],
    ["setup_failed"],
    ["requires_action", "setup_failed"],
    ["requires_action", "setup_failed", "requires_action", "succeeded"],
]
STAGE = {"requires_action": 2, "setup_failed": 4, "succeeded": 6}
DECLINES = [
    ("authentication_required", "authentication_required"),
    ("card_declined", "authentication_required"),
    ("card_declined", "insufficient_funds"),
    ("expired_card", None),
]


def _setup_event(seti: str, pm: str, step: str, at: int) -> dict[str, Any]:
    if step == "succeeded":
        return stripe_event("setup_intent.succeeded", setup_intent(seti, payment_method=pm),
                            created=at)
    if step == "requires_action":
        return stripe_event("setup_intent.requires_action",
                            setup_intent(seti, status="requires_action"), created=at)
    error = {"code": "setup_intent_authentication_failure", "message": "failed authentication"}
    return stripe_event(
        "setup_intent.setup_failed",
        setup_intent(seti, status="requires_payment_method", last_setup_error=error),
        created=at,
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str]]:
    """Events in the order Stripe created them, and the charge references they refer to."""
    events: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 2))):
        seti, pm = f"seti_{i}", f"pm_{i}"
        at, previous = CREATED + draw(st.integers(0, 3)), 0
        path = draw(st.sampled_from(SETUP_PATHS))
        for step in path:
            # The same second only when the flow moves forward: that is the tie rule.
            at += draw(st.integers(0 if STAGE[step] > previous else 1, 2))
            previous = STAGE[step]
            events.append(_setup_event(seti, pm, step, at))
        if path[-1] == "succeeded":
            attached = at + draw(st.integers(-1, 1))
            events.append(stripe_event("payment_method.attached", card_method(pm),
                                       created=attached))
            if draw(st.booleans()):
                events.append(stripe_event("payment_method.detached",
                                           card_method(pm, customer=None),
                                           created=attached + draw(st.integers(1, 5))))
    references = []
    for j in range(draw(st.integers(1, 2))):
        pi, reference = f"pi_{j}", f"order-{j}"
        references.append(reference)
        at = CREATED + draw(st.integers(0, 3))
        for k in range(draw(st.integers(1, 3))):
            at += draw(st.integers(1, 30))
            code, decline_code = draw(st.sampled_from(DECLINES))
            error = decline(code, decline_code, charge=f"ch_{j}_{k}")
            intent = payment_intent(pi, status="requires_payment_method",
                                    last_payment_error=error, latest_charge=f"ch_{j}_{k}",
                                    metadata={"reference": reference})
            events.append(stripe_event("payment_intent.payment_failed", intent, created=at))
        outcome = draw(st.sampled_from([None, "succeeded", "canceled"]))
        if outcome:
            intent = payment_intent(pi, status=outcome, latest_charge=f"ch_{j}_x",
                                    metadata={"reference": reference})
            events.append(stripe_event(f"payment_intent.{outcome}", intent,
                                       created=at + draw(st.integers(1, 30))))
    return events, references


def _reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def _reserve_charges(sessions: sessionmaker[Session], clock: FakeClock,
                     references: list[str]) -> None:
    with sessions.begin() as session:
        for index, reference in enumerate(references):
            # Every other charge has its PaymentIntent id stored already; the rest are found
            # through the reference in the intent's metadata.
            session.add(Charge(
                reference=reference, idempotency_key=f"charge:{reference}",
                customer_id="cus_test", payment_method_id="pm_failed", amount=2000,
                currency="usd", payment_intent_id=f"pi_{index}" if index % 2 == 0 else None,
                status="pending", attempt_count=1, created_at=clock(), updated_at=clock(),
            ))


def _columns(row: Any, skip: set[str]) -> tuple[Any, ...]:
    return tuple(
        (column.key, getattr(row, column.key))
        for column in row.__table__.columns
        if column.key not in skip
    )


def _state(sessions: sessionmaker[Session]) -> dict[str, list[Any]]:
    bookkeeping = {"id", "updated_at"}
    with sessions() as session:
        cases = {c.id: c.payment_intent_id for c in session.scalars(select(RecoveryCase))}
        state = {
            model.__tablename__: sorted(
                _columns(row, bookkeeping) for row in session.scalars(select(model))
            )
            for model in (SetupAttempt, PaymentMethod, Charge, RecoveryCase)
        }
        state["notifications"] = sorted(
            (cases[n.case_id], *_columns(n, bookkeeping | {"case_id", "dedup_key"}))
            for n in session.scalars(select(Notification))
        )
        state["stripe_events"] = sorted(
            (e.id, e.status, e.error) for e in session.scalars(select(StripeEvent))
        )
    return state


def _deliver_all(engine: Engine, clock: FakeClock,
                 events: list[dict[str, Any]], batch_sizes: list[int] | None = None) -> None:
    """Deliver one by one, or in batches of the given sizes (the receiver's group commit)."""
    deliveries = [Delivery(parse_event(body_of(document)), 0) for document in events]
    sizes = iter(batch_sizes or [1] * len(deliveries))
    while deliveries:
        size = next(sizes, len(deliveries))
        batch, deliveries = deliveries[:size], deliveries[size:]
        for outcome in record_events(engine, batch, clock()):
            assert outcome in (Outcome.PROCESSED, Outcome.DUPLICATE), outcome


PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _end_state(engine: Engine, sessions: sessionmaker[Session], clock: FakeClock,
               references: list[str], events: list[dict[str, Any]],
               batch_sizes: list[int] | None = None) -> dict[str, list[Any]]:
    """The rows left by delivering `events` to an empty database with the charges reserved."""
    _reset(engine)
    _reserve_charges(sessions, clock, references)
    _deliver_all(engine, clock, events, batch_sizes)
    return _state(sessions)


@PROPERTY
@given(data=st.data())
def test_any_delivery_order_with_duplicates_ends_in_the_in_order_state(
    data: st.DataObject, engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    events, references = data.draw(histories())
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=4))
    deliveries = data.draw(st.permutations(events + duplicates))
    in_order = _end_state(engine, sessions, clock, references, events)
    assert _end_state(engine, sessions, clock, references, deliveries) == in_order


@PROPERTY
@given(data=st.data())
def test_any_batching_of_any_delivery_order_ends_in_the_in_order_state(
    data: st.DataObject, engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    """Batches merge their events' changes per row before writing: same end state."""
    events, references = data.draw(histories())
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=4))
    deliveries = data.draw(st.permutations(events + duplicates))
    batch_sizes = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=len(deliveries)))
    in_order = _end_state(engine, sessions, clock, references, events)
    assert _end_state(engine, sessions, clock, references, deliveries, batch_sizes) == in_order


def _ideal_history() -> list[dict[str, Any]]:
    """An iDEAL set-up as Stripe reports it: the bank step, the success naming the single-use
    iDEAL method, and the `attached` of the sepa_debit method it generated."""
    marked = {"metadata": {"payment_method_type": "ideal"}, "latest_attempt": "setatt_1"}
    return [
        stripe_event(
            "setup_intent.requires_action",
            setup_intent("seti_bank", status="requires_action", payment_method="pm_ideal",
                         **marked),
            created=CREATED,
        ),
        stripe_event(
            "setup_intent.succeeded",
            setup_intent("seti_bank", payment_method="pm_ideal", **marked),
            created=CREATED + 30,
        ),
        stripe_event(
            "payment_method.attached",
            sepa_method("pm_generated", sepa_debit={
                "bank_code": "37040044", "country": "DE", "last4": "3000",
                "generated_from": {"charge": None, "setup_attempt": "setatt_1"},
            }),
            created=CREATED + 30,
        ),
    ]


@PROPERTY
@given(data=st.data())
def test_a_bank_set_up_saves_the_generated_method_in_any_order(
    data: st.DataObject, engine: Engine, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    events = _ideal_history()
    deliveries = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events),
                                                                       max_size=2))))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=5))
    in_order = _end_state(engine, sessions, clock, [], events)

    assert _end_state(engine, sessions, clock, [], deliveries, sizes) == in_order
    with sessions() as session:
        [method] = session.scalars(select(PaymentMethod))
        [attempt] = session.scalars(select(SetupAttempt))
    assert (method.id, method.type, method.sepa_last4) == ("pm_generated", "sepa_debit", "3000")
    assert (method.generated_from, method.setup_intent_id) == ("ideal", "seti_bank")
    assert (attempt.status, attempt.payment_method_type) == ("succeeded", "ideal")
