"""`processor charge` as a separate process against the sandbox served by this test process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from processor.db.models import Charge
from tests.fixtures.sandbox import cli_environment
from tests.fixtures.signals import ctrl_c_enabled
from tests.integration.charging.conftest import named_method_file

pytestmark = pytest.mark.slow


@pytest.fixture
def run_cli(
    engine: Engine, sandbox: Any, database_url: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "processor", "charge", *args],
            env=cli_environment(database_url, sandbox),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def test_one_charge_prints_one_line_and_exits_0(run_cli: Any, sandbox: Any) -> None:
    customer, method = sandbox.saved_card("cli-ok@example.com", "pm_card_visa")
    done = run_cli(
        "--customer", customer, "--amount", "1999", "--currency", "JPY", "--reference", "cli-1"
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith(f"succeeded cli-1 ¥1,999 {customer} {method} pi_")


def test_a_decline_prints_the_reason_and_exits_2(run_cli: Any, sandbox: Any) -> None:
    customer, _method = sandbox.saved_card("cli-3ds@example.com", "pm_card_authenticationRequired")
    done = run_cli("--customer", customer, "--amount", "1999", "--currency", "jpy")
    assert done.returncode == 2, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("failed chg_")
    assert "authentication_required/authentication_required" in line
    assert "(recovery case opened: authentication_required)" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "19.99", "--currency", "usd"], "not a whole number"),
        (["--amount", "10", "--currency", "usd"], "under Stripe's minimum"),
        (["--amount", "1000", "--currency", "dollars"], "three-letter ISO 4217"),
    ],
)
def test_invalid_input_gets_a_clear_message_and_charges_nothing(
    run_cli: Any, sandbox: Any, args: list[str], message: str
) -> None:
    customer, _method = sandbox.saved_card("cli-bad@example.com", "pm_card_visa")
    done = run_cli("--customer", customer, *args)
    assert done.returncode == 1
    assert message in done.stderr and "nothing was charged" in done.stderr
    assert done.stdout == ""
    assert sandbox.control.charge_attempts == []


def test_an_invalid_file_is_refused_with_line_numbers(
    run_cli: Any, sandbox: Any, tmp_path: Path, engine: Engine
) -> None:
    customer, _method = sandbox.saved_card("cli-file@example.com", "pm_card_visa")
    path = tmp_path / "bad.csv"
    path.write_text(
        "reference,customer,amount,currency\n"
        f"a,{customer},1000,usd\n"
        f"b,{customer},ten,usd\n"
        f"a,{customer},1000,usd\n"
    )
    done = run_cli("--file", str(path))
    assert done.returncode == 1
    assert "2 problems; nothing was charged" in done.stderr
    assert "line 3: amount 'ten' is not a whole number" in done.stderr
    assert "line 4: reference 'a' is already used on line 2" in done.stderr
    assert sandbox.control.charge_attempts == []
    with engine.connect() as connection:
        assert connection.execute(select(Charge.id)).all() == []


def test_a_batch_killed_midway_finishes_on_rerun_without_charging_anyone_twice(
    sandbox: Any, database_url: str, tmp_path: Path, engine: Engine
) -> None:
    count = 40
    path = named_method_file(sandbox, tmp_path, "kill", count)
    sandbox.control.set_latency(0.15)  # keep several requests in flight when the kill lands
    command = [sys.executable, "-m", "processor", "charge", "--file", str(path),
               "--rate", "12", "--concurrency", "4"]  # fmt: skip
    environment = cli_environment(database_url, sandbox)

    victim = subprocess.Popen(
        command, env=environment, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while len(sandbox.control.charge_attempts) < count // 3:
        assert time.monotonic() < deadline, "the batch never got going"
        assert victim.poll() is None, victim.communicate()
        time.sleep(0.02)
    victim.kill()  # SIGKILL: no cleanup, no chance to write outcomes
    victim.communicate(timeout=10)
    assert victim.returncode == -9

    with engine.connect() as connection:
        statuses = dict(connection.execute(select(Charge.reference, Charge.status)).all())
    charged_before = len(sandbox.control.charge_attempts)
    assert 0 < len(statuses) < count and charged_before < count

    finished = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr

    keys = [attempt.idempotency_key for attempt in sandbox.control.charge_attempts]
    assert sorted(keys) == sorted(f"charge:kill-{index}" for index in range(count))
    with engine.connect() as connection:
        rows = connection.execute(select(Charge.reference, Charge.status)).all()
    assert len(rows) == count and {status for _reference, status in rows} == {"succeeded"}
    records = [
        json.loads(line)
        for line in (tmp_path / "charges.csv.results.jsonl").read_text().splitlines()
    ]
    assert len(records) == count
    resumed = {record["reference"] for record in records if record["resumed"]}
    assert resumed == {ref for ref, status in statuses.items() if status == "succeeded"}


def test_an_interrupted_batch_finishes_what_it_sent_and_stops(
    sandbox: Any, database_url: str, tmp_path: Path, engine: Engine
) -> None:
    count = 30
    path = named_method_file(sandbox, tmp_path, "int", count)
    sandbox.control.set_latency(0.15)
    command = [sys.executable, "-m", "processor", "charge", "--file", str(path),
               "--rate", "10", "--concurrency", "4"]  # fmt: skip
    with ctrl_c_enabled():
        batch = subprocess.Popen(
            command,
            env=cli_environment(database_url, sandbox),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    deadline = time.monotonic() + 30
    while len(sandbox.control.charge_attempts) < 8:
        assert batch.poll() is None, batch.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    batch.send_signal(signal.SIGINT)
    _out, err = batch.communicate(timeout=20)
    assert batch.returncode == 130, err
    assert "interrupted" in err and "run the same file again" in err

    with engine.connect() as connection:
        statuses = dict(connection.execute(select(Charge.idempotency_key, Charge.status)).all())
    sent = {attempt.idempotency_key for attempt in sandbox.control.charge_attempts}
    # Every charge that reached Stripe has its outcome; what is still pending was never sent.
    assert sent and all(statuses.get(key) == "succeeded" for key in sent), (statuses, err)
    assert all(key not in sent for key, status in statuses.items() if status == "pending"), (
        statuses,
        err,
    )
    assert len(sent) < count

    finished = subprocess.run(
        command, env=cli_environment(database_url, sandbox), cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    attempts = [attempt.idempotency_key for attempt in sandbox.control.charge_attempts]
    assert len(attempts) == count, (sorted(attempts), err, finished.stderr)
