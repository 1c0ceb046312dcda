"""Recovery cases for tests, opened the way the webhook and the charger open them."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import unit_of_work
from processor.db.models import Customer, Notification, PaymentMethod
from processor.recovery.cases import PaymentFailure, record_payment_failure

_numbers = itertools.count(1)


def add_customer(
    sessions: sessionmaker[Session],
    customer_id: str,
    *,
    email: str = "ada@example.com",
    name: str | None = "Ada Lovelace",
    locale: str | None = "en",
    now: datetime,
) -> None:
    with unit_of_work(sessions) as session:
        session.add(
            Customer(
                id=customer_id,
                email=email,
                name=name,
                preferred_locale=locale,
                created_at=now,
                updated_at=now,
            )
        )


def open_case(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    customer_id: str | None = None,
    email: str | None = "ada@example.com",
    name: str | None = "Ada Lovelace",
    locale: str | None = "en",
    code: str = "authentication_required",
    decline_code: str | None = "authentication_required",
    amount: int = 1999,
    currency: str = "usd",
    payment_intent_id: str | None = None,
    card_last4: str | None = "3184",
) -> int:
    """Open a case (and its first notification) through `record_payment_failure`."""
    number = next(_numbers)
    customer_id = customer_id or f"cus_test{number}"
    if email is not None:
        add_customer(sessions, customer_id, email=email, name=name, locale=locale, now=now)
    method_id = f"pm_test{number}"
    with unit_of_work(sessions) as session:
        if card_last4 is not None:
            session.add(
                PaymentMethod(
                    id=method_id,
                    customer_id=customer_id,
                    type="card",
                    card_brand="visa",
                    card_last4=card_last4,
                    status="active",
                    created_at=now,
                    updated_at=now,
                )
            )
        return record_payment_failure(
            session,
            PaymentFailure(
                payment_intent_id=payment_intent_id or f"pi_test{number}",
                customer_id=customer_id,
                payment_method_id=method_id,
                amount=amount,
                currency=currency,
                code=code,
                decline_code=decline_code,
                message="Your card was declined.",
                failed_at=now,
            ),
            now=now,
        )


def notifications_of(sessions: sessionmaker[Session], case_id: int) -> list[Notification]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Notification)
                .where(Notification.case_id == case_id)
                .order_by(Notification.sequence, Notification.id)
            )
        )


def only_notification(sessions: sessionmaker[Session], case_id: int) -> Notification:
    rows = notifications_of(sessions, case_id)
    assert len(rows) == 1, rows
    return rows[0]


def first_notification(sessions: sessionmaker[Session], case_id: int) -> Notification:
    """The case's first email (reminders may have been queued after it was sent)."""
    rows = [r for r in notifications_of(sessions, case_id) if r.kind == "initial"]
    assert len(rows) == 1, rows
    return rows[0]
