"""Running a validated batch: bounded concurrency, one shared rate limit, safe to rerun.

A rerun of the same file skips references whose row is final and resends pending ones under
their idempotency key, so a batch killed at any point finishes without charging anyone twice.
Rows that reuse a stored reference for a different charge make the whole file invalid.
"""

from __future__ import annotations

import logging
import math
import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from processor.charging.csvfile import BatchRow, FileProblem, InvalidBatchFile
from processor.charging.ledger import (
    FINAL_STATUSES,
    ChargeRow,
    conflict_with,
    find_charges,
    outcome_from_row,
)
from processor.charging.ratelimit import TokenBucket
from processor.charging.request import CATEGORIES, ERROR, ChargeOutcome
from processor.charging.retry import RetryPolicy
from processor.charging.service import ChargeOptions, Collaborators, charge_off_session
from processor.errors import ProcessorError

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
    reference: str
    customer_id: str
    amount: int
    currency: str
    outcome: ChargeOutcome | None = None
    error: str | None = None

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
        by_currency[result.currency] = by_currency.get(result.currency, 0) + result.amount
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
    deps: Collaborators,
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

    limiter = TokenBucket(options.rate)
    charge_options = ChargeOptions(retry=options.retry, before_request=limiter.acquire)
    executor = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="charge")
    try:
        for result in _bounded_map(
            executor,
            lambda row: charge_row(deps, row, charge_options),
            to_send,
            window=options.workers * 2,
        ):
            report(result)
    except BaseException:
        # Interrupted: let the charges in flight finish and write their outcome, start no more.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return summary


def charge_row(deps: Collaborators, row: BatchRow, options: ChargeOptions) -> RowResult:
    """One row's charge; any failure becomes that row's result rather than stopping the batch."""
    try:
        return _finished(row, charge_off_session(deps, row.request, options))
    except ProcessorError as exc:
        return _failed(row, str(exc))
    except Exception as exc:  # one broken row must not take the batch down; a rerun resolves it
        log.exception("charge %s failed unexpectedly", row.request.reference)
        return _failed(row, f"unexpected error: {type(exc).__name__}: {exc}")


def _bounded_map(
    executor: ThreadPoolExecutor,
    work: Callable[[BatchRow], RowResult],
    rows: Iterable[BatchRow],
    *,
    window: int,
) -> Iterator[RowResult]:
    """Like `executor.map`, in completion order, with at most `window` rows queued at once.

    Keeping the queue short means an interrupted batch has started few rows it never finished.
    Finished futures arrive through a queue, so each result costs the same however many run.
    """
    finished: queue.SimpleQueue[Future[RowResult]] = queue.SimpleQueue()
    in_flight = 0
    for row in rows:
        if in_flight >= window:
            yield finished.get().result()
            in_flight -= 1
        executor.submit(work, row).add_done_callback(finished.put)
        in_flight += 1
    for _ in range(in_flight):
        yield finished.get().result()


def _finished(row: BatchRow, outcome: ChargeOutcome) -> RowResult:
    return RowResult(
        line=row.line,
        reference=outcome.reference,
        customer_id=outcome.customer_id,
        amount=outcome.amount,
        currency=outcome.currency,
        outcome=outcome,
    )


def _failed(row: BatchRow, error: str) -> RowResult:
    request = row.request
    return RowResult(
        line=row.line,
        reference=request.reference or "",
        customer_id=request.customer_id,
        amount=request.amount,
        currency=request.currency,
        error=error,
    )
