"""The `charge` command's two modes, for a terminal: one charge, or a CSV batch.

Exit codes: 0 charged (or processing); 2 declined (a recovery case is open); 1 anything else,
with the reason on stderr. A batch exits 0 when every row has an outcome (declines included),
1 when the file is invalid or some rows ended in errors (rerun the same file to retry them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console

from processor.charging.batch import BatchOptions, RowResult, run_batch
from processor.charging.csvfile import InvalidBatchFile, read_batch_file
from processor.charging.report import ResultFile, batch_progress, outcome_line, summary_table
from processor.charging.request import ChargeRequest
from processor.charging.service import ChargeOptions, charge_off_session
from processor.errors import InvalidInput, ProcessorError

if TYPE_CHECKING:
    from processor.runtime import Runtime

EXIT_CHARGED = 0
EXIT_FAILED = 1
EXIT_DECLINED = 2
EXIT_INTERRUPTED = 130
MAX_PROBLEMS_SHOWN = 50


def charge_one(
    deps: Runtime,
    request: ChargeRequest,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Make one charge and print one line saying what happened."""
    try:
        outcome = charge_off_session(deps, request, ChargeOptions())
    except InvalidInput as exc:
        print(f"processor charge: {exc}; nothing was charged", file=err)
        return EXIT_FAILED
    except ProcessorError as exc:
        print(f"processor charge: {exc}", file=err)
        return EXIT_FAILED
    print(outcome_line(outcome), file=out)
    return EXIT_DECLINED if outcome.declined else EXIT_CHARGED


def default_results_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".results.jsonl")


def charge_file(
    deps: Runtime,
    path: str | Path,
    options: BatchOptions,
    *,
    results_path: str | Path | None = None,
    console: Console | None = None,
    err: Console | None = None,
) -> int:
    """Validate the whole file, then charge it with a progress bar, a summary and a result file."""
    console = console or Console()
    err = err or Console(stderr=True)
    try:
        rows = read_batch_file(path)
    except InvalidBatchFile as exc:
        _print_problems(err, exc)
        return EXIT_FAILED
    results_path = Path(results_path) if results_path else default_results_path(path)
    progress, task = batch_progress(err, len(rows))
    started = time.monotonic()

    def advance(result: RowResult, sink: ResultFile) -> None:
        sink.write(result)
        elapsed = max(time.monotonic() - started, 1e-6)
        done = progress.tasks[0].completed + 1
        progress.update(task, advance=1, rate=done / elapsed)

    try:
        with ResultFile(results_path) as sink, progress:
            summary = run_batch(deps, rows, options, on_result=lambda result: advance(result, sink))
    except InvalidBatchFile as exc:
        _print_problems(err, exc, source=str(path))
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print(
            "interrupted: the charges in flight were finished; run the same file again to "
            "charge the rest (nothing is charged twice)",
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    elapsed = time.monotonic() - started
    console.print(summary_table(summary))
    console.print(
        f"{summary.total} charges in {elapsed:.1f} s ({summary.total / max(elapsed, 1e-6):.1f}/s); "
        f"results: {results_path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if summary.errors:
        err.print(
            f"{summary.errors} charge(s) ended in errors (see {results_path}); "
            "run the same file again to retry them: nothing is charged twice",
            soft_wrap=True,
        )
        return EXIT_FAILED
    return EXIT_CHARGED


def _print_problems(err: Console, exc: InvalidBatchFile, *, source: str | None = None) -> None:
    heading = f"{source}: {exc}" if source else str(exc)
    err.print(f"processor charge: {heading}", markup=False, highlight=False, soft_wrap=True)
    for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
        err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    hidden = len(exc.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        err.print(f"  ... and {hidden} more", markup=False, highlight=False, soft_wrap=True)
