"""Off-session charging, single and batch: the Python API the `charge` command is built on.

    from processor.charging import ChargeRequest, charge_off_session
    outcome = charge_off_session(runtime, ChargeRequest("cus_...", 1999, "jpy", reference="R"))

Nothing here imports `web` or `cli`.
"""

from processor.charging.batch import BatchOptions, BatchSummary, RowResult, run_batch
from processor.charging.csvfile import BatchRow, InvalidBatchFile, read_batch_file
from processor.charging.request import (
    ChargeOutcome,
    ChargeRefused,
    ChargeRequest,
    ChargeUnresolved,
    idempotency_key,
)
from processor.charging.retry import RetryPolicy
from processor.charging.service import ChargeOptions, charge_off_session

__all__ = [
    "BatchOptions",
    "BatchRow",
    "BatchSummary",
    "ChargeOptions",
    "ChargeOutcome",
    "ChargeRefused",
    "ChargeRequest",
    "ChargeUnresolved",
    "InvalidBatchFile",
    "RetryPolicy",
    "RowResult",
    "charge_off_session",
    "idempotency_key",
    "read_batch_file",
    "run_batch",
]
