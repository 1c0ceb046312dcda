"""The outbox worker: claim a batch of due notifications, re-check each case right before
sending, render, send the batch over one SMTP connection, and record every outcome.

At-least-once: a worker that dies mid-batch leaves its rows `sending` until the lease runs
out, and another worker sends them again under the same Message-ID. Nothing here deletes a
row; a failure is retried with backoff until the policy gives up and marks it dead.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from typing import TYPE_CHECKING

from processor.db.engine import unit_of_work
from processor.errors import DeliveryError
from processor.logs import scrub
from processor.notifier.compose import Prepared, compose_email
from processor.notifier.message import Sender
from processor.notifier.pipeline import FreshCases, SentLog
from processor.notifier.render import PURPOSES
from processor.notifier.smtp import MailBatch, Mailer
from processor.recovery.cases import REMINDER_NOTIFICATION
from processor.recovery.outbox import (
    ClaimedNotification,
    RetryPolicy,
    SentEmail,
    claim_due_notifications,
    mark_skipped,
    postpone_claim,
    record_failure,
    release_claim,
)
from processor.recovery.recipients import resolve_recipient
from processor.recovery.reminders import SETTLING_RECHECK, payment_settling

if TYPE_CHECKING:
    from processor.runtime import Runtime

log = logging.getLogger(__name__)

# Emails prepared ahead of the one being sent: enough to keep the sender busy, few enough
# that a case closing meanwhile is still seen (cases are re-read at most a second before).
LOOK_AHEAD = 4
OUTCOMES = ("sent", "retry", "dead", "skipped", "postponed", "released", "lost")


@dataclass(frozen=True)
class NotifierOptions:
    batch_size: int = 50
    lease: timedelta = timedelta(minutes=5)
    # Stop starting new sends this long before the lease ends, so nobody else takes them.
    lease_margin: timedelta = timedelta(seconds=30)
    poll_interval: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class Tally:
    """How the rows of one or more batches ended."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def claimed(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def merge(self, other: Tally) -> None:
        for outcome, count in other.counts.items():
            self.counts[outcome] += count

    def __str__(self) -> str:
        return ", ".join(f"{outcome} {count}" for outcome, count in self.counts.items())

    def __getitem__(self, outcome: str) -> int:
        return self.counts[outcome]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Notifier:
    """Sends what the outbox says is due; one instance per worker thread or process."""

    def __init__(
        self,
        deps: Runtime,
        *,
        mailer: Mailer,
        options: NotifierOptions | None = None,
        worker_id: str | None = None,
        rng: Random | None = None,
        on_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.sessions = deps.sessions
        self.settings = deps.settings
        self.stripe = deps.stripe
        self.mailer = mailer
        self.clock = deps.clock
        self.options = options or NotifierOptions()
        self.worker_id = worker_id or new_worker_id()
        self.sender = Sender.parse(deps.settings.mail_from)
        self._rng = rng or Random()  # jitter, not secrecy
        self._on_outcome = on_outcome

    def run_batch(self, stop: threading.Event | None = None) -> Tally:
        """Claim up to one batch of due rows and settle each of them.

        The next few emails are prepared (case re-read, recipient, link, rendering) on a helper
        thread while this one waits on the SMTP server: the two overlap, since waiting on a
        socket lets the other thread run.
        """
        with unit_of_work(self.sessions) as session:
            batch = claim_due_notifications(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                limit=self.options.batch_size,
                lease=self.options.lease,
            )
        tally = Tally()
        if not batch:
            return tally
        sent = SentLog(
            self.sessions,
            self.clock,
            self.settings.reminder_schedule,
            on_outcome=lambda outcome: self.count(tally, outcome),
        )
        cases = FreshCases(self.sessions, [claimed.case_id for claimed in batch])
        waiting = deque(batch)
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifier-compose") as helper,
            self.mailer.batch() as mail,
        ):
            ahead: deque[Future[Prepared | str]] = deque()
            while waiting or ahead:
                while waiting and len(ahead) < LOOK_AHEAD:
                    ahead.append(helper.submit(self._prepare, waiting.popleft(), cases))
                prepared = ahead.popleft().result()
                if isinstance(prepared, str):
                    self.count(tally, prepared)
                elif (stop is not None and stop.is_set()) or self._lease_running_out(
                    prepared.claimed
                ):
                    self.count(tally, self._release(prepared.claimed))
                else:
                    outcome = self._deliver(prepared, mail, sent)
                    if outcome is not None:
                        self.count(tally, outcome)
                sent.flush_if_due()
            sent.flush()
        log.info(
            "notifier batch: %s",
            ", ".join(f"{outcome} {n}" for outcome, n in tally.counts.items() if n),
        )
        return tally

    def count(self, tally: Tally, outcome: str) -> None:
        tally.add(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def drain(self, *, deadline: float | None = None) -> Tally:
        """Run batches until nothing is due (`processor notify --once`, and tests)."""
        total = Tally()
        while deadline is None or time.monotonic() < deadline:
            tally = self.run_batch()
            total.merge(tally)
            if tally.claimed == 0:
                break
        return total

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a failing database only delays the next poll."""
        log.info("notifier %s started", self.worker_id)
        while not stop.is_set():
            try:
                tally = self.run_batch(stop)
            except Exception:
                log.exception("notifier batch failed; retrying after the poll interval")
                tally = Tally()
            if tally.claimed < self.options.batch_size:
                stop.wait(self.options.poll_interval)
        log.info("notifier %s stopped", self.worker_id)

    # -- one row ----------------------------------------------------------------------------

    def _prepare(self, claimed: ClaimedNotification, cases: FreshCases) -> Prepared | str:
        """The email for this row, or the outcome already recorded when none will be sent."""
        try:
            policy = self.options.retry
            if claimed.attempts > policy.max_attempts:
                # Earlier holders stopped mid-send without recording anything, too many times.
                return self._fail(claimed, "gave up: workers stopped while sending it", False)
            if claimed.kind not in PURPOSES:
                return self._fail(claimed, f"unknown notification kind {claimed.kind!r}", False)
            case = cases.get(claimed.case_id)
            if case is None or not case.is_open:
                return self._skip(claimed)
            if claimed.kind == REMINDER_NOTIFICATION and payment_settling(
                self.stripe, case.payment_intent_id
            ):
                return self._postpone(claimed)
            recipient = resolve_recipient(case, self.stripe)
            email = compose_email(
                claimed,
                case,
                recipient,
                settings=self.settings,
                sender=self.sender,
                clock=self.clock,
            )
            return Prepared(claimed=claimed, email=email, locale=recipient.locale)
        except DeliveryError as exc:
            return self._fail(claimed, str(exc), exc.retryable)
        except Exception as exc:
            # A bug (say, in a template) must not stop the worker; the policy bounds the retries.
            log.exception("notification %s failed unexpectedly", claimed.id)
            return self._fail(claimed, f"internal error: {type(exc).__name__}: {exc}", True)

    def _deliver(self, prepared: Prepared, mail: MailBatch, sent: SentLog) -> str | None:
        """Send one prepared email; None when the delivery waits in `sent` to be recorded."""
        try:
            mail.send(prepared.email, sender=self.sender.address)
        except DeliveryError as exc:
            return self._fail(prepared.claimed, str(exc), exc.retryable)
        sent.add(
            SentEmail(
                claimed=prepared.claimed,
                message_id=prepared.email.message_id,
                recipient=prepared.email.recipient,
                locale=prepared.locale,
                sent_at=self.clock(),
            )
        )
        return None

    def _skip(self, claimed: ClaimedNotification) -> str:
        with unit_of_work(self.sessions) as session:
            mark_skipped(session, claimed, now=self.clock())
        log.info("notification %s skipped: case %s is closed", claimed.id, claimed.case_id)
        return "skipped"

    def _fail(self, claimed: ClaimedNotification, error: str, retryable: bool) -> str:
        # The text may quote an exception or a server's answer: ops read it on /ops.
        error = scrub(error)
        with unit_of_work(self.sessions) as session:
            outcome = record_failure(
                session,
                claimed,
                error=error,
                retryable=retryable,
                policy=self.options.retry,
                now=self.clock(),
                rng=self._rng,
            )
        level = logging.WARNING if outcome == "retry" else logging.ERROR
        log.log(
            level,
            "notification %s %s after attempt %s: %s",
            claimed.id,
            outcome,
            claimed.attempts,
            error,
        )
        return outcome

    def _postpone(self, claimed: ClaimedNotification) -> str:
        now = self.clock()
        with unit_of_work(self.sessions) as session:
            postpone_claim(session, claimed, until=now + SETTLING_RECHECK, now=now)
        log.info("notification %s postponed: the payment is settling", claimed.id)
        return "postponed"

    def _release(self, claimed: ClaimedNotification) -> str:
        with unit_of_work(self.sessions) as session:
            release_claim(session, claimed, now=self.clock())
        return "released"

    def _lease_running_out(self, claimed: ClaimedNotification) -> bool:
        return self.clock() >= claimed.lease_until - self.options.lease_margin
