"""Fixtures for notifier tests: settings pointing at a test SMTP server, and notifiers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from random import Random

import pytest
import stripe
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from processor.config import Settings
from processor.notifier.smtp import SmtpMailer
from processor.notifier.worker import Notifier, NotifierOptions
from processor.recovery.outbox import RetryPolicy
from processor.runtime import Runtime
from tests.fixtures.servers import free_port

FAST_RETRIES = RetryPolicy(
    max_attempts=3, first_delay=timedelta(seconds=10), max_delay=timedelta(minutes=1)
)


@pytest.fixture
def unreachable_stripe() -> stripe.StripeClient:
    """A Stripe client for tests whose customers are all in our table: it must never be used."""
    return stripe.StripeClient(
        "sk_test_unused",
        base_addresses={"api": f"http://127.0.0.1:{free_port()}"},
        max_network_retries=0,
    )


@pytest.fixture
def make_notifier(
    engine: Engine,
    sessions: sessionmaker[Session],
    make_settings: Callable[..., Settings],
    unreachable_stripe: stripe.StripeClient,
    clock,  # type: ignore[no-untyped-def]
) -> Callable[..., Notifier]:
    def make(
        smtp_url: str,
        *,
        settings: Settings | None = None,
        stripe_client: stripe.StripeClient | None = None,
        options: NotifierOptions | None = None,
        clock_=None,  # type: ignore[no-untyped-def]
        worker_id: str | None = None,
        tls_context=None,  # type: ignore[no-untyped-def]
    ) -> Notifier:
        settings = settings or make_settings(
            smtp_url=smtp_url,
            public_base_url="https://shop.example",
            secret_key="s" * 40,
            mail_from="Example Shop <payments@shop.example>",
        )
        runtime = Runtime(
            settings=settings,
            engine=engine,
            sessions=sessions,
            stripe=stripe_client or unreachable_stripe,
            clock=clock_ or clock,
        )
        return Notifier(
            runtime,
            mailer=SmtpMailer.from_url(smtp_url, tls_context=tls_context),
            options=options or NotifierOptions(retry=FAST_RETRIES),
            worker_id=worker_id,
            rng=Random(0),
        )

    return make
