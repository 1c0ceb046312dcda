"""What the sandbox console lists: customers with their active methods, the latest cases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.customers import customers_with_active_methods
from processor.db.engine import unit_of_work
from processor.db.models import Customer, PaymentMethod, RecoveryCase
from processor.recovery.cases import recent_cases
from tests.fixtures.database import FakeClock


def test_customers_come_newest_first_with_only_their_active_methods(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    now = clock()
    with unit_of_work(sessions) as session:
        for index, customer_id in enumerate(("cus_old", "cus_new", "cus_none")):
            at = now + timedelta(minutes=index)
            session.add(Customer(id=customer_id, email=f"{customer_id}@example.com",
                                 created_at=at, updated_at=at))
        for method_id, customer_id, status in (
            ("pm_a", "cus_old", "active"),
            ("pm_b", "cus_old", "detached"),
            ("pm_c", "cus_new", "active"),
        ):
            session.add(PaymentMethod(id=method_id, customer_id=customer_id, type="card",
                                      status=status, created_at=now, updated_at=now))

    with unit_of_work(sessions) as session:
        listed = [(customer.id, [method.id for method in methods])
                  for customer, methods in customers_with_active_methods(session)]

    assert listed == [("cus_none", []), ("cus_new", ["pm_c"]), ("cus_old", ["pm_a"])]


def test_recent_cases_are_the_latest_opened_up_to_the_limit(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    now = clock()
    with unit_of_work(sessions) as session:
        for index in range(4):
            at = now + timedelta(hours=index)
            session.add(RecoveryCase(
                payment_intent_id=f"pi_{index}", kind="payment_method_required", status="open",
                amount=1999, currency="usd", opened_at=at, last_failure_at=at, updated_at=at,
            ))

    with unit_of_work(sessions) as session:
        listed = [case.payment_intent_id for case in recent_cases(session, limit=3)]

    assert listed == ["pi_3", "pi_2", "pi_1"]
