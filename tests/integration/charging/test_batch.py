"""Batches in-process: outcomes per row, the summary, the result file, reruns, conflicts."""

from __future__ import annotations

import io
import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import event, func, select

from processor.charging import BatchOptions, InvalidBatchFile, read_batch_file, run_batch
from processor.charging.console import charge_file
from processor.db.models import Charge, PaymentMethod
from processor.runtime import Runtime
from tests.fixtures.signals import ctrl_c_enabled
from tests.integration.charging.conftest import FAST_RETRY, attempts_for, named_method_file

OPTIONS = BatchOptions(concurrency=4, rate=200, retry=FAST_RETRY)
CARDS = [
    ("pm_card_visa", "succeeded"),
    ("pm_card_authenticationRequired", "needs_authentication"),
    ("pm_card_chargeCustomerFail", "needs_new_method"),
    ("pm_sepaDebit_success_de", "processing"),
]


def write_batch(sandbox: Any, path: Path, *, copies: int = 1) -> dict[str, str]:
    """A file with one row per (card, copy); answers each reference's expected category."""
    expected = {}
    lines = ["reference,customer,amount,currency,description"]
    for copy in range(copies):
        for index, (card, category) in enumerate(CARDS):
            customer, _method = sandbox.saved_card(f"b{copy}-{index}@example.com", card)
            reference = f"batch-{copy}-{index}"
            currency = "eur" if "sepa" in card else "usd"
            lines.append(f"{reference},{customer},{1500 + index},{currency},row {index}")
            expected[reference] = category
    path.write_text("\n".join(lines) + "\n")
    return expected


def test_a_batch_charges_each_row_once_and_sorts_the_outcomes(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    expected = write_batch(sandbox, tmp_path / "charges.csv", copies=2)
    seen: dict[str, str] = {}
    summary = run_batch(
        runtime,
        read_batch_file(tmp_path / "charges.csv"),
        OPTIONS,
        on_result=lambda result: seen.__setitem__(result.reference, result.category),
    )
    assert seen == expected
    assert summary.counts == {
        "succeeded": 2,
        "processing": 2,
        "needs_authentication": 2,
        "needs_new_method": 2,
        "error": 0,
    }
    assert summary.totals["processing"] == {"eur": 2 * 1503}
    for reference in expected:
        assert attempts_for(sandbox, reference) == 1


def test_rerunning_a_finished_batch_sends_nothing(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    expected = write_batch(sandbox, tmp_path / "charges.csv")
    rows = read_batch_file(tmp_path / "charges.csv")
    run_batch(runtime, rows, OPTIONS)
    before = len(sandbox.control.charge_attempts)
    results = []
    summary = run_batch(runtime, rows, OPTIONS, on_result=results.append)
    assert summary.resumed == len(expected) == len(results)
    assert all(result.resumed for result in results)
    assert {result.reference: result.category for result in results} == expected
    assert len(sandbox.control.charge_attempts) == before


def test_a_rerun_that_changes_a_row_is_refused_whole(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    path = tmp_path / "charges.csv"
    write_batch(sandbox, path)
    run_batch(runtime, read_batch_file(path), OPTIONS)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",1501,", ",9999,")
    lines.append(lines[1].replace("batch-0-0", "batch-new"))
    path.write_text("\n".join(lines) + "\n")
    before = len(sandbox.control.charge_attempts)
    with pytest.raises(InvalidBatchFile) as caught:
        run_batch(runtime, read_batch_file(path), OPTIONS)
    assert [str(problem) for problem in caught.value.problems] == [
        "line 3: reference 'batch-0-1' was already used for a different charge "
        "(amount 1501 usd); use a new reference"
    ]
    assert len(sandbox.control.charge_attempts) == before
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Charge)) == len(CARDS)


def test_rows_that_fail_do_not_stop_the_batch(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    customer, _method = sandbox.saved_card("fine@example.com", "pm_card_visa")
    empty = sandbox.client.v1.customers.create({"email": "nothing-saved@example.com"}).id
    path = tmp_path / "charges.csv"
    path.write_text(
        "reference,customer,amount,currency\n"
        f"ok-1,{customer},1000,usd\n"
        f"no-method,{empty},1000,usd\n"
        "no-customer,cus_doesnotexist,1000,usd\n"
        f"ok-2,{customer},2000,usd\n"
    )
    results = {}
    summary = run_batch(
        runtime,
        read_batch_file(path),
        OPTIONS,
        on_result=lambda result: results.__setitem__(result.reference, result),
    )
    assert (summary.counts["succeeded"], summary.errors) == (2, 2)
    assert "no usable saved payment method" in (results["no-method"].error or "")
    assert "cus_doesnotexist does not exist" in (results["no-customer"].error or "")
    assert results["no-method"].line == 3


def test_the_console_run_prints_a_summary_and_writes_a_result_file(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    expected = write_batch(sandbox, tmp_path / "charges.csv")
    out, err = io.StringIO(), io.StringIO()
    code = charge_file(
        runtime,
        tmp_path / "charges.csv",
        OPTIONS,
        console=Console(file=out, width=100),
        err=Console(file=err, width=100),
    )
    assert code == 0
    text = out.getvalue()
    for label in (
        "succeeded",
        "processing",
        "needs authentication",
        "needs a new method",
        "errors",
    ):
        assert label in text
    assert "$15.00" in text and "€15.03" in text
    records = [
        json.loads(line)
        for line in (tmp_path / "charges.csv.results.jsonl").read_text().splitlines()
    ]
    assert {record["reference"]: record["category"] for record in records} == expected
    declined = next(r for r in records if r["category"] == "needs_authentication")
    assert declined["recovery_kind"] == "authentication_required"
    assert declined["payment_intent"].startswith("pi_")
    assert declined["line"] == 3 and declined["resumed"] is False


def test_named_methods_known_unusable_are_refused_row_by_row(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    lines = ["reference,customer,amount,currency,payment_method"]
    for index in range(6):
        customer, method = sandbox.saved_card(f"named{index}@example.com", "pm_card_visa")
        lines.append(f"named-{index},{customer},{1000 + index},usd,{method}")
        if index == 3:
            detached = (customer, method)
    now = runtime.clock()
    with runtime.sessions.begin() as session:
        session.add(
            PaymentMethod(
                id=detached[1], customer_id=detached[0], type="card", status="detached",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    path = tmp_path / "charges.csv"
    path.write_text("\n".join(lines) + "\n")
    results = {}
    summary = run_batch(
        runtime,
        read_batch_file(path),
        OPTIONS,
        on_result=lambda result: results.__setitem__(result.reference, result),
    )
    assert (summary.counts["succeeded"], summary.errors) == (5, 1)
    assert "was detached" in (results["named-3"].error or "")
    assert attempts_for(sandbox, "named-3") == 0
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Charge)) == 5


def test_ctrl_c_that_the_database_driver_turns_into_its_own_error_still_stops_the_batch(
    runtime: Runtime, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = named_method_file(sandbox, tmp_path, "ctrlc", 6)

    def interrupted_mid_query(*_args: Any, **_kwargs: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ctrl_c:  # as psycopg does when the pool's ping is cut
            raise RuntimeError("can't change 'autocommit' now: transaction ACTIVE") from ctrl_c

    monkeypatch.setattr("processor.charging.batch.reserve_named_charge", interrupted_mid_query)
    with pytest.raises(KeyboardInterrupt):
        run_batch(runtime, read_batch_file(path), OPTIONS)
    assert all(attempts_for(sandbox, f"ctrlc-{index}") == 0 for index in range(6))


def test_ctrl_c_while_a_chunk_is_reserved_lets_the_charges_in_flight_record_their_outcome(
    runtime: Runtime, sandbox: Any, tmp_path: Path
) -> None:
    path = named_method_file(sandbox, tmp_path, "lock", 12)
    sandbox.control.set_latency(0.3)  # the first chunk is still in flight while the next is reserved
    main = threading.get_ident()
    transactions = statements = 0

    def ctrl_c_inside_the_second_reservation(*_args: Any) -> None:
        # After its second statement: an interrupt there left SQLite's write lock held.
        nonlocal transactions, statements
        if threading.get_ident() == main and transactions == 3:
            statements += 1
            if statements == 2:
                transactions += 1
                signal.raise_signal(signal.SIGINT)  # handled between two of SQLAlchemy's lines

    def count_transactions(*_args: Any) -> None:
        nonlocal transactions
        if threading.get_ident() == main:
            transactions += 1

    # The main thread's transactions: the ledger's read, then one reservation per chunk.
    event.listen(runtime.engine, "begin", count_transactions)
    event.listen(runtime.engine, "after_cursor_execute", ctrl_c_inside_the_second_reservation)
    try:
        with ctrl_c_enabled(), pytest.raises(KeyboardInterrupt):
            run_batch(runtime, read_batch_file(path), OPTIONS)
    finally:
        event.remove(runtime.engine, "begin", count_transactions)
        event.remove(runtime.engine, "after_cursor_execute", ctrl_c_inside_the_second_reservation)
    assert transactions == 4  # the interrupt came inside the second chunk's reservation
    sent = [f"lock-{index}" for index in range(12) if attempts_for(sandbox, f"lock-{index}")]
    with runtime.sessions() as session:
        statuses = dict(session.execute(select(Charge.reference, Charge.status)).all())
    assert sent == [f"lock-{index}" for index in range(4)]
    assert all(statuses[reference] == "succeeded" for reference in sent), statuses
