"""The composition root: builds the real engine, Stripe client and clock from settings, once.

Everything else receives these as arguments; nothing below this module reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.captcha import CaptchaVerifier, build_verifier
from processor.clock import Clock, utc_now
from processor.config import Settings
from processor.db.engine import make_engine, make_session_factory
from processor.ops.metrics import Metrics
from processor.stripe_gateway import build_stripe_client


@dataclass
class Runtime:
    """The long-lived collaborators of one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    stripe: stripe.StripeClient
    clock: Clock = field(default=utc_now)
    metrics: Metrics = field(default_factory=Metrics)
    captcha: CaptchaVerifier | None = None

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    engine: Engine | None = None,
    stripe_client: stripe.StripeClient | None = None,
    clock: Clock = utc_now,
) -> Runtime:
    engine = engine or make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        stripe=stripe_client or build_stripe_client(settings),
        clock=clock,
        captcha=build_verifier(settings),
    )
