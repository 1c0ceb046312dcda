"""Batch helpers of the worker: the batch's cases kept fresh, and deliveries recorded in groups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from processor.clock import Clock
from processor.db.engine import unit_of_work
from processor.recovery.cases import INITIAL_NOTIFICATION
from processor.recovery.outbox import SentEmail, mark_sent_many
from processor.recovery.reminders import schedule_reminders_many
from processor.recovery.summary import CaseSummary, load_case_summaries

log = logging.getLogger(__name__)


class FreshCases:
    """The batch's cases, read right before its emails go out and read again whenever the
    last read is over a second old: a case closed in the meantime gets no email."""

    MAX_AGE_SECONDS = 1.0

    def __init__(self, sessions: sessionmaker[Session], case_ids: list[int]) -> None:
        self._sessions = sessions
        self._ids = case_ids
        self._read_at = 0.0
        self._cases: dict[int, CaseSummary] = {}
        self._lock = threading.Lock()

    def get(self, case_id: int) -> CaseSummary | None:
        with self._lock:
            if time.monotonic() - self._read_at > self.MAX_AGE_SECONDS:
                with self._sessions() as session:
                    self._cases = load_case_summaries(session, self._ids)
                self._read_at = time.monotonic()
            return self._cases.get(case_id)


class SentLog:
    """Deliveries waiting to be recorded: written together, every few emails or every second.

    Writing each one alone would cost a commit per email; waiting for the whole batch would
    widen what a crash resends (under the same Message-ID, so receivers see one email).
    """

    FLUSH_EVERY = 25
    FLUSH_AFTER_SECONDS = 1.0

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        reminder_schedule: Sequence[timedelta],
        on_outcome: Callable[[str], None],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._reminder_schedule = reminder_schedule
        self._on_outcome = on_outcome
        self._waiting: list[SentEmail] = []
        self._oldest = 0.0

    def add(self, email: SentEmail) -> None:
        if not self._waiting:
            self._oldest = time.monotonic()
        self._waiting.append(email)

    def flush_if_due(self) -> None:
        if len(self._waiting) >= self.FLUSH_EVERY or (
            self._waiting and time.monotonic() - self._oldest >= self.FLUSH_AFTER_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, []
        now = self._clock()
        first_emails = {
            e.claimed.case_id: e.sent_at for e in waiting if e.claimed.kind == INITIAL_NOTIFICATION
        }
        with unit_of_work(self._sessions) as session:
            held = mark_sent_many(session, waiting, now=now)
            schedule_reminders_many(
                session, first_emails, schedule=self._reminder_schedule, now=now
            )
        lost = len(waiting) - held
        if lost:
            # Our lease ran out mid-batch and another worker took these rows: they may go out
            # twice, with the same Message-ID.
            log.warning("%s notifications were sent after their lease was lost", lost)
        for email in waiting:
            log.debug(
                "notification %s sent (case %s, %s)",
                email.claimed.id,
                email.claimed.case_id,
                email.claimed.kind,
                extra={"case_id": email.claimed.case_id},
            )
        for outcome in ["sent"] * held + ["lost"] * lost:
            self._on_outcome(outcome)
