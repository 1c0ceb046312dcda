"""How charges are shown to people and to programs: one line per single charge, a progress bar
and summary table for a batch (rich), and a JSON-lines result file with one object per row.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from processor.charging.amounts import format_money
from processor.charging.batch import BatchSummary, RowResult
from processor.charging.request import (
    ERROR,
    NEEDS_AUTHENTICATION,
    NEEDS_NEW_METHOD,
    PROCESSING,
    SUCCEEDED,
    ChargeOutcome,
)

CATEGORY_LABELS = {
    SUCCEEDED: "succeeded",
    PROCESSING: "processing",
    NEEDS_AUTHENTICATION: "needs authentication",
    NEEDS_NEW_METHOD: "needs a new method",
    ERROR: "errors",
}


def outcome_line(outcome: ChargeOutcome) -> str:
    """One line for a single charge: what happened, to which intent, and why if it failed."""
    money = format_money(outcome.amount, outcome.currency)
    parts = [
        outcome.status,
        outcome.reference,
        money,
        outcome.customer_id,
        outcome.payment_method_id or "-",
        outcome.payment_intent_id or "-",
    ]
    if outcome.declined:
        codes = "/".join(code for code in (outcome.error_code, outcome.decline_code) if code)
        parts.append(f"{codes}: {outcome.message or 'declined'}")
        if outcome.recovery_kind:
            parts.append(f"(recovery case opened: {outcome.recovery_kind})")
    if outcome.resumed:
        parts.append("(already done; nothing sent)")
    return " ".join(parts)


def result_record(result: RowResult) -> dict[str, Any]:
    """The machine-readable form of one row's result."""
    outcome, request = result.outcome, result.request
    return {
        "line": result.line,
        "reference": result.reference,
        "customer": request.customer_id,
        "amount": request.amount,
        "currency": request.currency,
        "category": result.category,
        "status": outcome.status if outcome else None,
        "payment_intent": outcome.payment_intent_id if outcome else None,
        "payment_method": outcome.payment_method_id if outcome else None,
        "error_code": outcome.error_code if outcome else None,
        "decline_code": outcome.decline_code if outcome else None,
        "message": (outcome.message if outcome else None) or result.error,
        "recovery_kind": outcome.recovery_kind if outcome else None,
        "resumed": result.resumed,
    }


class ResultFile:
    """JSON lines, one object per row, written as results arrive.

    The database is the record of what was charged; this file is the run's report, rewritten
    whole by a rerun, so it is buffered rather than flushed line by line.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None

    def __enter__(self) -> ResultFile:
        self._handle = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(self, *_exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def write(self, result: RowResult) -> None:
        assert self._handle is not None, "use ResultFile as a context manager"
        with self._lock:
            self._handle.write(json.dumps(result_record(result), ensure_ascii=False) + "\n")


def batch_progress(console: Console, total: int) -> tuple[Progress, Any]:
    """A progress bar on `console` and the task to advance."""
    progress = Progress(
        TextColumn("charging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("charging", total=total, rate=0.0)
    return progress, task


def summary_table(summary: BatchSummary) -> Table:
    table = Table(title="Charges", show_footer=True)
    table.add_column("outcome", footer="total")
    table.add_column("charges", justify="right", footer=str(summary.total))
    table.add_column("amount", justify="right")
    for category, label in CATEGORY_LABELS.items():
        totals = summary.totals.get(category, {})
        amounts = ", ".join(
            format_money(amount, currency) for currency, amount in sorted(totals.items())
        )
        table.add_row(label, str(summary.counts[category]), amounts or "-")
    if summary.resumed:
        table.caption = f"{summary.resumed} already done before this run: nothing sent for them"
    return table
