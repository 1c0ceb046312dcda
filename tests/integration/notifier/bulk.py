"""Many open cases with their first email due, inserted in bulk (for worker and speed tests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select

from processor.db.models import Customer, Notification, RecoveryCase


def insert_due_cases(engine: Engine, count: int, *, now: datetime, prefix: str = "bulk") -> None:
    """`count` open cases, each with a customer and a pending first email due at `now`."""
    customers = [
        {
            "id": f"cus_{prefix}{i}",
            "email": f"{prefix}{i}@example.com",
            "name": f"Customer {i}",
            "preferred_locale": "ja" if i % 2 else "en",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    cases = [
        {
            "payment_intent_id": f"pi_{prefix}{i}",
            "customer_id": f"cus_{prefix}{i}",
            "kind": "authentication_required" if i % 2 else "payment_method_required",
            "status": "open",
            "amount": 1000 + i,
            "currency": "jpy" if i % 2 else "usd",
            "decline_code": "insufficient_funds",
            "failure_count": 1,
            "opened_at": now,
            "last_failure_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Customer), customers)
        connection.execute(insert(RecoveryCase), cases)
        ids = connection.execute(
            select(RecoveryCase.id).where(RecoveryCase.payment_intent_id.like(f"pi_{prefix}%"))
        ).scalars()
        connection.execute(
            insert(Notification),
            [
                {
                    "case_id": case_id,
                    "kind": "initial",
                    "sequence": 0,
                    "dedup_key": f"case:{case_id}:0",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for case_id in ids
            ],
        )
