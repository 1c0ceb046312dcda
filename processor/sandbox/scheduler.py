"""A background timer: runs callables after a delay on worker threads, never in a request.

Webhook deliveries and SEPA settlement use it. It keeps its own monotonic time, so
freezegun in a test does not stop it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from processor.sandbox.knobs import monotonic

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, workers: int = 8) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._generation = 0
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, job: Callable[[], None]) -> None:
        with self._condition:
            if self._closed:
                return
            self._start()
            due = monotonic() + max(0.0, delay)
            heapq.heappush(self._heap, (due, next(self._sequence), self._generation, job))
            self._condition.notify()

    def cancel_all(self) -> None:
        """Drop everything scheduled (jobs already running finish)."""
        with self._condition:
            self._heap.clear()
            self._generation += 1

    @property
    def generation(self) -> int:
        return self._generation

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._heap.clear()
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self) -> None:
        if self._thread is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sandbox-worker")
            self._thread = threading.Thread(
                target=self._loop, name="sandbox-scheduler", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._closed:
                    if self._heap and self._heap[0][0] <= monotonic():
                        break
                    timeout = self._heap[0][0] - monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._closed:
                    return
                _, _, generation, job = heapq.heappop(self._heap)
                if generation != self._generation:
                    continue
            assert self._pool is not None
            self._pool.submit(self._run, job)

    @staticmethod
    def _run(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            log.exception("sandbox background job failed")
