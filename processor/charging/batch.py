"""Running a validated batch: bounded concurrency, one shared rate limit, safe to rerun.

A rerun of the same file skips references whose row is final and resends pending ones under
their idempotency key, so a batch killed at any point finishes without charging anyone twice.
Rows that reuse a stored reference for a different charge make the whole file invalid.
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from processor.charging.csvfile import BatchRow, FileProblem, InvalidBatchFile
from processor.charging.ledger import (
    FINAL_STATUSES,
    ChargeRow,
    conflict_with,
    find_charges,
    outcome_from_row,
)
from processor.charging.ratelimit import TokenBucket
from processor.charging.request import CATEGORIES, ERROR, ChargeOutcome, ChargeRequest
from processor.charging.retry import RetryPolicy
from processor.charging.service import (
    ChargeOptions,
    charge_off_session,
    reserve_named_charge,
    resume_charge,
)
from processor.db.engine import unit_of_work
from processor.errors import InvalidInput, ProcessorError

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_RATE = 20.0
MAX_DEFAULT_CONCURRENCY = 64


def default_concurrency(rate: float) -> int:
    """Enough charges in flight to use the rate when Stripe takes up to a second to answer."""
    return max(4, min(MAX_DEFAULT_CONCURRENCY, math.ceil(rate)))


@dataclass(frozen=True)
class BatchOptions:
    rate: float = DEFAULT_RATE  # requests per second to Stripe, across all workers
    concurrency: int | None = None  # charges in flight; None: `default_concurrency(rate)`
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def workers(self) -> int:
        return self.concurrency or default_concurrency(self.rate)


@dataclass(frozen=True)
class RowResult:
    """The outcome of one line of the file, or why it has none."""

    line: int
    request: ChargeRequest  # what the line asked for; a charge made for it matches it
    outcome: ChargeOutcome | None = None
    error: str | None = None

    @property
    def reference(self) -> str:
        return self.request.reference or ""

    @property
    def category(self) -> str:
        return self.outcome.category if self.outcome is not None else ERROR

    @property
    def resumed(self) -> bool:
        return self.outcome is not None and self.outcome.resumed


@dataclass
class BatchSummary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    resumed: int = 0

    def add(self, result: RowResult) -> None:
        self.counts[result.category] += 1
        by_currency = self.totals.setdefault(result.category, {})
        request = result.request
        by_currency[request.currency] = by_currency.get(request.currency, 0) + request.amount
        self.resumed += int(result.resumed)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def errors(self) -> int:
        return self.counts[ERROR]


def check_against_ledger(rows: list[BatchRow], stored: dict[str, ChargeRow]) -> None:
    """Refuse the file if a row reuses a stored reference for a different charge."""
    problems = []
    for row in rows:
        existing = stored.get(row.request.reference or "")
        conflict = conflict_with(existing, row.request) if existing is not None else None
        if conflict is not None:
            problems.append(FileProblem(row.line, conflict))
    if problems:
        raise InvalidBatchFile("the batch", problems)


def run_batch(
    deps: Runtime,
    rows: list[BatchRow],
    options: BatchOptions | None = None,
    *,
    on_result: Callable[[RowResult], None] = lambda _result: None,
) -> BatchSummary:
    """Charge every row once; report each result through `on_result` as it arrives."""
    options = options or BatchOptions()
    with deps.sessions() as session:
        stored = find_charges(session, (row.request.reference or "" for row in rows))
    check_against_ledger(rows, stored)
    summary = BatchSummary()

    def report(result: RowResult) -> None:
        summary.add(result)
        on_result(result)

    to_send = []
    for row in rows:
        existing = stored.get(row.request.reference or "")
        if existing is not None and existing.status in FINAL_STATUSES:
            report(_finished(row, outcome_from_row(existing, resumed=True)))
        else:
            to_send.append(row)
    if not to_send:
        return summary

    # A tenth of a second's worth of catch-up after a stall; never more than `rate` per second.
    limiter = TokenBucket(options.rate, burst=max(1, round(options.rate / 10)))
    charge_options = ChargeOptions(retry=options.retry, before_request=limiter.acquire)
    executor = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="charge")
    jobs = _jobs(deps, to_send, stored, charge_options, chunk=options.workers)
    try:
        for result in _bounded_map(executor, jobs, window=options.workers * 2):
            report(result)
    except BaseException:
        # Interrupted: let the charges in flight finish and write their outcome, start no more.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return summary


Job = Callable[[], RowResult]


def _jobs(
    deps: Runtime,
    rows: list[BatchRow],
    stored: dict[str, ChargeRow],
    options: ChargeOptions,
    *,
    chunk: int,
) -> Iterator[Job]:
    """One job per row, writing the pending rows of a chunk in one transaction when it can.

    Rows that name their method need nothing from Stripe before their row is written, so a
    chunk of them is reserved together, just before the chunk is sent: one transaction where
    there would be one per row. Pending rows of an earlier run are resumed as they are.
    """
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        fresh = [
            row
            for row in part
            if row.request.payment_method_id and (row.request.reference or "") not in stored
        ]
        reserved, refused = _reserve_together(deps, fresh)
        for row in part:
            reference = row.request.reference or ""
            if reference in refused:
                yield partial(_failed, row, refused[reference])
            elif reference in reserved or reference in stored:
                existing = reserved.get(reference) or stored[reference]
                yield partial(
                    _guarded, row, partial(resume_charge, deps, existing, row.request, options)
                )
            else:
                yield partial(
                    _guarded, row, partial(charge_off_session, deps, row.request, options)
                )


def _reserve_together(
    deps: Runtime, rows: list[BatchRow]
) -> tuple[dict[str, ChargeRow], dict[str, str]]:
    """Pending rows for `rows` in one transaction: (written, refused with the reason)."""
    reserved: dict[str, ChargeRow] = {}
    refused: dict[str, str] = {}
    if not rows:
        return reserved, refused
    try:
        with _ctrl_c_after_the_transaction(), unit_of_work(deps.sessions) as session:
            now = deps.clock()
            for row in rows:
                try:
                    stored = reserve_named_charge(session, row.request, now=now)
                except InvalidInput as exc:  # raised before this row wrote anything
                    refused[row.request.reference or ""] = str(exc)
                else:
                    reserved[stored.reference] = stored
    except Exception as exc:  # the rows then go one by one, each reporting its own failure
        if _interrupted(exc):
            raise KeyboardInterrupt from exc
        log.exception("could not reserve %d charges together", len(rows))
        return {}, {}
    return reserved, refused


@contextmanager
def _ctrl_c_after_the_transaction() -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends.

    Raised inside a database call, the interrupt leaves the connection to the interrupted
    frames (SQLAlchemy does no I/O in answer to an interrupt): on SQLite its write lock stays
    held while the batch waits for the charges in flight, and they could not record their
    outcome. Only the main thread receives signals, and only Python's own handler is
    deferred (a shell may have set SIGINT to be ignored)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if received:  # also when the block failed: the interrupt is not lost with its error
            raise KeyboardInterrupt


def _interrupted(exc: BaseException) -> bool:
    """Whether Ctrl-C arrived while the database was being spoken to. The driver may then
    raise an error of its own while it cleans up (psycopg refuses to reset a connection that
    a pool's ping left mid-query), with the interrupt only in the error's chain."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def _guarded(row: BatchRow, charge: Callable[[], ChargeOutcome]) -> RowResult:
    """One row's charge; any failure becomes that row's result rather than stopping the batch."""
    try:
        return _finished(row, charge())
    except ProcessorError as exc:
        return _failed(row, str(exc))
    except Exception as exc:  # one broken row must not take the batch down; a rerun resolves it
        log.exception("charge %s failed unexpectedly", row.request.reference)
        return _failed(row, f"unexpected error: {type(exc).__name__}: {exc}")


def _bounded_map(
    executor: ThreadPoolExecutor, jobs: Iterable[Job], *, window: int
) -> Iterator[RowResult]:
    """Run `jobs`, yielding results in completion order, with at most `window` queued at once.

    Keeping the queue short means an interrupted batch has started few rows it never finished,
    and `jobs` is only advanced as room frees up. Finished futures arrive through a queue, so
    each result costs the same however many run.
    """
    finished: queue.SimpleQueue[Future[RowResult]] = queue.SimpleQueue()
    in_flight = 0
    for job in jobs:
        if in_flight >= window:
            yield finished.get().result()
            in_flight -= 1
        executor.submit(job).add_done_callback(finished.put)
        in_flight += 1
    for _ in range(in_flight):
        yield finished.get().result()


def _finished(row: BatchRow, outcome: ChargeOutcome) -> RowResult:
    return RowResult(row.line, row.request, outcome=outcome)


def _failed(row: BatchRow, error: str) -> RowResult:
    return RowResult(row.line, row.request, error=error)
