"""The SQLite write gate excludes other processes and other threads, and only for SQLite files."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine

from processor.db.write_gate import FileWriteGate, OpenGate, write_gate_for

TRY_LOCK = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\n"
    "try:\n"
    "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except BlockingIOError:\n"
    "    print('held')\n"
    "else:\n"
    "    print('free')\n"
)


def _seen_by_another_process(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return done.stdout.strip()


def test_the_gate_is_held_against_other_processes_until_left(tmp_path: Path) -> None:
    gate = write_gate_for(create_engine(f"sqlite:///{tmp_path / 'app.db'}"))
    assert isinstance(gate, FileWriteGate)
    with gate:
        assert _seen_by_another_process(tmp_path / "app.db.write-lock") == "held"
    assert _seen_by_another_process(tmp_path / "app.db.write-lock") == "free"
    gate.close()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    gate = FileWriteGate(tmp_path / "db.write-lock")
    inside: list[str] = []

    def other() -> None:
        with gate:
            inside.append("other")

    with gate:
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.1)  # time for the other thread to reach the gate and wait there
        inside.append("first")
        assert inside == ["first"]
    thread.join(timeout=10)
    assert inside == ["first", "other"]
    gate.close()


def test_postgresql_and_memory_databases_pass_freely() -> None:
    assert isinstance(write_gate_for(create_engine("sqlite://")), OpenGate)
    postgres = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert isinstance(write_gate_for(postgres), OpenGate)
