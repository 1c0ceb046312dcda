"""A gate for SQLite write transactions that hands the turn over between processes at once.

SQLite lets one connection write at a time. A writer that finds the file locked sleeps in
SQLite's busy handler for 1, 2, 5, ... up to 100 ms between tries, so two webhook workers on
one file waited far longer than the other's transaction lasted (p99 in the hundreds of
milliseconds). An exclusive `flock` on a file beside the database makes the waiting writer
sleep in the kernel and wake as soon as the turn is free. Writers that do not pass through
the gate still meet SQLite's own lock, so correctness never depends on it; only waiting does.
PostgreSQL needs no gate: its writers run side by side.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine

LOCK_SUFFIX = ".write-lock"


class FileWriteGate:
    """Exclusive across processes (flock) and across this process's threads (a Lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.Lock()  # flock alone does not exclude threads sharing the fd
        self._fd: int | None = None

    def __enter__(self) -> FileWriteGate:
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without holding the GIL
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class OpenGate(AbstractContextManager[None]):
    """No gate: PostgreSQL, or an in-memory SQLite database that one process owns."""

    def __exit__(self, *_exc: object) -> None:
        return None

    def close(self) -> None:
        return None


def write_gate_for(engine: Engine) -> FileWriteGate | OpenGate:
    """The gate for `engine`'s database file; open for PostgreSQL and in-memory SQLite."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return OpenGate()
    return FileWriteGate(Path(database).with_name(Path(database).name + LOCK_SUFFIX))
