"""Reading a batch file: every row checked before anything is charged, problems by line.

Columns: `reference, customer, amount, currency`, optionally `payment_method, description`, in
any order, with a header row. References must be unique within the file: they are what makes a
rerun safe.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from processor.charging.amounts import parse_amount
from processor.charging.request import ChargeRequest
from processor.errors import InvalidInput

REQUIRED_COLUMNS = ("reference", "customer", "amount", "currency")
OPTIONAL_COLUMNS = ("payment_method", "description")


@dataclass(frozen=True)
class BatchRow:
    """One validated row and the line it starts on."""

    line: int
    request: ChargeRequest


@dataclass(frozen=True)
class FileProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class InvalidBatchFile(InvalidInput):
    """The file cannot be run as it is; `problems` names each one with its line."""

    def __init__(self, path: str | Path, problems: list[FileProblem]) -> None:
        count = len(problems)
        super().__init__(
            f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was charged",
            code="invalid_batch_file",
        )
        self.problems = problems


def read_batch_file(path: str | Path) -> list[BatchRow]:
    """Parse and validate the whole file; raise `InvalidBatchFile` listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InvalidBatchFile(path, [FileProblem(None, "no such file")]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidBatchFile(path, [FileProblem(None, f"not UTF-8 text ({exc.reason})")]) from exc
    return parse_batch(text, source=str(path))


def parse_batch(text: str, *, source: str = "<batch>") -> list[BatchRow]:
    reader = csv.reader(text.splitlines(keepends=True), skipinitialspace=True, strict=True)
    problems: list[FileProblem] = []
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidBatchFile(source, [FileProblem(1, f"unreadable header: {exc}")]) from exc
    if header is None or not any(cell.strip() for cell in header):
        raise InvalidBatchFile(source, [FileProblem(None, "the file is empty")])
    columns = [cell.strip().lower() for cell in header]
    problems.extend(_check_header(columns))
    if problems:
        raise InvalidBatchFile(source, problems)

    rows: list[BatchRow] = []
    first_line_of: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(FileProblem(reader.line_num, f"malformed CSV: {exc}"))
            break
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            problems.append(
                FileProblem(start, f"expected {len(columns)} fields, found {len(cells)}")
            )
            continue
        values = {name: cell.strip() for name, cell in zip(columns, cells, strict=True)}
        row_problems, request = _check_row(values)
        reference = values["reference"]
        if reference in first_line_of:
            row_problems.append(
                f"reference {reference!r} is already used on line {first_line_of[reference]}"
            )
        elif reference:
            first_line_of[reference] = start
        if row_problems:
            problems.extend(FileProblem(start, message) for message in row_problems)
        elif request is not None:
            rows.append(BatchRow(line=start, request=request))
    if not problems and not rows:
        problems.append(FileProblem(None, "the file has a header but no charges"))
    if problems:
        raise InvalidBatchFile(source, problems)
    return rows


def _check_header(columns: list[str]) -> list[FileProblem]:
    problems = []
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        problems.append(FileProblem(1, f"missing column(s): {', '.join(missing)}"))
    unknown = [name for name in columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        allowed = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        problems.append(
            FileProblem(1, f"unknown column(s): {', '.join(unknown)} (allowed: {allowed})")
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        problems.append(FileProblem(1, f"repeated column(s): {', '.join(repeated)}"))
    return problems


def _check_row(values: dict[str, str]) -> tuple[list[str], ChargeRequest | None]:
    """Every problem of one row (not just the first), and the request if there were none."""
    problems: list[str] = []
    if not values["reference"]:
        problems.append("reference is empty (each row needs one, so a rerun is safe)")
    amount: int | None = None
    try:
        amount = parse_amount(values["amount"])
    except InvalidInput as exc:
        problems.append(str(exc))
    request = ChargeRequest(
        customer_id=values["customer"],
        amount=amount if amount is not None else 0,
        currency=values["currency"],
        payment_method_id=values.get("payment_method") or None,
        reference=values["reference"] or None,
        description=values.get("description") or None,
    )
    problems.extend(
        str(problem)
        for problem in request.problems()
        if not (problem.field == "amount" and amount is None)  # already said above
    )
    if problems:
        return problems, None
    return [], request.validated()
