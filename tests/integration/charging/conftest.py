"""Charging against the sandbox over loopback, on this session's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from processor.charging import ChargeOptions, RetryPolicy
from processor.config import Settings
from processor.db.models import Charge, RecoveryCase
from processor.runtime import Runtime, build_runtime

# Short waits: the sandbox answers in milliseconds and tests must stay fast.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.02, max_delay=0.2)


@pytest.fixture
def runtime(
    engine: Engine, sandbox: Any, make_settings: Callable[..., Settings], clock: Any
) -> Iterator[Runtime]:
    """The process's collaborators, with a sandbox client and the test clock.

    The client leaves retrying to the charger (stripe-python's own retries wait half a second
    and more, which would only slow these tests down).
    """
    settings = make_settings(public_base_url="http://127.0.0.1:8000")
    client = sandbox.new_client(max_network_retries=0)
    yield build_runtime(settings, engine=engine, stripe_client=client, clock=clock)


@pytest.fixture
def fast() -> ChargeOptions:
    return ChargeOptions(retry=FAST_RETRY)


def charge_row(sessions: sessionmaker[Session], reference: str) -> Charge:
    with sessions() as session:
        return session.scalars(select(Charge).where(Charge.reference == reference)).one()


def cases(sessions: sessionmaker[Session]) -> list[RecoveryCase]:
    with sessions() as session:
        return list(session.scalars(select(RecoveryCase).order_by(RecoveryCase.id)))


def attempts_for(sandbox: Any, reference: str) -> int:
    """How many charges the sandbox made under this reference's idempotency key."""
    return len(sandbox.control.charges_for(idempotency_key=f"charge:{reference}"))


def named_method_file(sandbox: Any, tmp_path: Path, prefix: str, count: int) -> Path:
    """A batch file of `count` rows, each naming a fresh customer's saved card."""
    lines = ["reference,customer,amount,currency,payment_method"]
    for index in range(count):
        customer, method = sandbox.saved_card(f"{prefix}{index}@example.com", "pm_card_visa")
        lines.append(f"{prefix}-{index},{customer},{1000 + index},usd,{method}")
    path = tmp_path / "charges.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
