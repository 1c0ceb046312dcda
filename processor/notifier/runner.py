"""Running the notifier: as `processor notify [--once]`, or as a thread inside `processor serve`.

Both build one `Notifier` from the runtime and SMTP_URL; without SMTP_URL nothing is sent and
the emails wait in the outbox, which is safe: they go out once a notifier can reach a server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from processor.notifier.smtp import Mailer, SmtpMailer
from processor.notifier.worker import Notifier, NotifierOptions
from processor.runtime import Runtime

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 30.0


def mailer_from_settings(runtime: Runtime) -> SmtpMailer | None:
    url = runtime.settings.smtp_url
    return SmtpMailer.from_url(url) if url else None


def build_notifier(
    runtime: Runtime,
    mailer: Mailer,
    *,
    options: NotifierOptions | None = None,
    on_outcome: Callable[[str], None] | None = None,
) -> Notifier:
    return Notifier(runtime, mailer=mailer, options=options, on_outcome=on_outcome)


class BackgroundNotifier:
    """The notifier on a daemon thread of the web process, stopped with the app's lifespan."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=notifier.run, args=(self._stop,), name="notifier", daemon=True
        )

    @classmethod
    def for_runtime(
        cls, runtime: Runtime, mailer: Mailer | None = None
    ) -> BackgroundNotifier | None:
        """A notifier for this process, or None (logged) when there is no SMTP server to use."""
        mailer = mailer or mailer_from_settings(runtime)
        if mailer is None:
            log.warning("SMTP_URL is not set: recovery emails wait in the outbox")
            return None
        metrics = runtime.metrics
        return cls(
            build_notifier(
                runtime,
                mailer,
                on_outcome=lambda outcome: metrics.notifications.labels(outcome=outcome).inc(),
            )
        )

    def start(self) -> BackgroundNotifier:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the email in hand, give the rest of the batch back, and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            log.warning("notifier did not stop within %.0f s", STOP_TIMEOUT_SECONDS)
