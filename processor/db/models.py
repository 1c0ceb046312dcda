"""SQLAlchemy 2 typed models: the tables ops dashboards read (documented in docs/database.md).

Stripe ids are kept as text and carry no foreign keys to each other: webhooks may name objects
this service never created, and must still be recorded. Money is integer minor units plus an
ISO 4217 currency in lower case. Every time is an aware UTC datetime (see `UTCDateTime`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from processor.db.grouping import DAY_OPENED, HOUR_RECEIVED
from processor.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EVENT_STATUSES = ("received", "processed", "failed", "ignored")
CHARGE_STATUSES = ("pending", "succeeded", "processing", "requires_action", "failed", "error")
CASE_KINDS = ("authentication_required", "payment_method_required")
CASE_STATUSES = ("open", "recovered", "canceled")
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "dead", "canceled", "skipped")
PAYMENT_METHOD_STATUSES = ("active", "detached")


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, the same on both databases."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The model's Core table, for set-based statements; SQLAlchemy types `__table__` as any
    FromClause, which `update()` and `insert()` do not accept."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


class Customer(Base):
    """A person who signed up; `id` is the Stripe Customer id."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    preferred_locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StripeEvent(Base):
    """Every verified webhook delivery (or reconciled event), stored once by Stripe's id.

    The key also holds Stripe's `created`, which never changes for an event: on PostgreSQL
    the table is partitioned by week of `created` (processor.db.partitions), and a partition's
    unique keys must include the partition key. A redelivery carries the same `created`, so
    it still meets the first delivery's row.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        CheckConstraint(_one_of("status", EVENT_STATUSES), name="status"),
        Index(None, "object_id"),
        # ops_webhook_health groups by this hour: a window on `hour` reads only its range.
        Index("ix_stripe_events_received_hour_type", HOUR_RECEIVED, "type"),
        Index(
            "ix_stripe_events_failed_last_received_at",
            "last_received_at",
            **_where("status = 'failed'"),
        ),
        # Retention's deletes outside the weekly partitions (and on SQLite), oldest first.
        Index(None, "stripe_created_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    object_id: Mapped[str | None] = mapped_column(String(255))
    stripe_created_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    delivery_count: Mapped[int] = mapped_column(Integer, default=1)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    secret_index: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    payload: Mapped[str | None] = mapped_column(Text)


class SetupAttempt(Base):
    """One try at saving a method through the confirm endpoint, updated by webhooks."""

    __tablename__ = "setup_attempts"
    __table_args__ = (Index(None, "customer_id", "created_at"), Index(None, "status", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    setup_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    confirmation_token_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(128))
    decline_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The state's time and stage as one number, to compare in one step (`attempts.state_rank`).
    state_rank: Mapped[int | None] = mapped_column(BigInteger)
    # Stripe's SetupAttempt (`latest_attempt`) and the type of method confirmed: a method
    # iDEAL or Bancontact generated names that attempt (see `PaymentMethod.generated_from`).
    latest_attempt_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payment_method_type: Mapped[str | None] = mapped_column(String(64))


class PaymentMethod(Base):
    """A customer's saved method; the row may be created by either of two webhooks."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint(_one_of("status", PAYMENT_METHOD_STATUSES), name="status"),
        Index(None, "customer_id", "status", "attached_at"),
        # Methods still waiting for their details: few, and a dashboard query lists them.
        Index(
            "ix_payment_methods_missing_details",
            "created_at",
            **_where("type IS NULL AND details_updated_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    setup_intent_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(64))
    card_brand: Mapped[str | None] = mapped_column(String(32))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp_month: Mapped[int | None] = mapped_column(Integer)
    card_exp_year: Mapped[int | None] = mapped_column(Integer)
    card_funding: Mapped[str | None] = mapped_column(String(16))
    card_country: Mapped[str | None] = mapped_column(String(2))
    sepa_last4: Mapped[str | None] = mapped_column(String(4))
    sepa_bank_code: Mapped[str | None] = mapped_column(String(32))
    sepa_country: Mapped[str | None] = mapped_column(String(2))
    generated_from: Mapped[str | None] = mapped_column(String(32))
    generated_from_attempt: Mapped[str | None] = mapped_column(String(255))
    allow_redisplay: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    attached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    details_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Charge(Base):
    """Every off-session attempt, written before the request so a crash leaves a trace."""

    __tablename__ = "charges"
    __table_args__ = (
        CheckConstraint(_one_of("status", CHARGE_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(None, "status", "created_at"),
        Index(None, "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(Text)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(128))
    decline_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCase(Base):
    """One failed off-session PaymentIntent we are trying to win back."""

    __tablename__ = "recovery_cases"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CASE_KINDS), name="kind"),
        CheckConstraint(_one_of("status", CASE_STATUSES), name="status"),
        Index(None, "status", "opened_at"),
        Index(None, "customer_id"),
        # ops_recovery_funnel groups by this day.
        Index("ix_recovery_cases_opened_day", DAY_OPENED),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    error_code: Mapped[str | None] = mapped_column(String(128))
    decline_code: Mapped[str | None] = mapped_column(String(128))
    failure_message: Mapped[str | None] = mapped_column(Text)
    failure_count: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_charge_id: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Notification(Base):
    """The email outbox: written with the state change that causes it, sent by the notifier."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_one_of("status", NOTIFICATION_STATUSES), name="status"),
        # ops_notification_queue: each group's oldest due time and most attempts, one probe each.
        Index(None, "status", "kind", "next_attempt_at"),
        Index(None, "status", "kind", "attempts"),
        Index(None, "case_id"),
        # The notifier's claim walks this in order (see claim_due_notifications).
        Index(
            "ix_notifications_claimable",
            "next_attempt_at",
            "id",
            **_where("status IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("recovery_cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    recipient: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateLimitCounter(Base):
    """Requests counted per subject and fixed window, shared by every worker and host.

    `scope` names the limit (`signup_ip`, `failed_setup_customer`, ...), `subject` what is
    limited (an address, a customer id, a case id). Rows past `expires_at` are pruned.
    """

    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index(None, "expires_at"),)

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


RETRY_STATUSES = ("scheduled", "running", "succeeded", "failed", "canceled")


class ChargeRetry(Base):
    """One automatic retry of a declined off-session charge: the same PaymentIntent confirmed
    again under its own idempotency key. Written when scheduled, so a crash leaves a trace."""

    __tablename__ = "charge_retries"
    __table_args__ = (
        CheckConstraint(_one_of("status", RETRY_STATUSES), name="status"),
        CheckConstraint("attempt > 0", name="attempt_positive"),
        UniqueConstraint("case_id", "attempt"),
        Index(None, "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("recovery_cases.id", ondelete="CASCADE"))
    charge_reference: Mapped[str] = mapped_column(String(200))
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    charge_id: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(128))
    decline_code: Mapped[str | None] = mapped_column(String(128))
    advice_code: Mapped[str | None] = mapped_column(String(64))
    network_advice_code: Mapped[str | None] = mapped_column(String(16))
    network_decline_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StatusCount(Base):
    """Rows per status of `notifications` (and kind), `charges` and `charge_retries`: triggers
    append +1 / -1 in the transaction of every insert, status change and delete, and a count is
    the SUM of its rows. `/metrics` and `ops_notification_queue` read these few rows instead of
    counting the tables; `processor.ops.counts` folds them into one row per status."""

    __tablename__ = "status_counts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    table_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    # The notification's kind; '' for the other tables.
    kind: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(BigInteger)


# The view's lag columns: PostgreSQL's EXTRACT(EPOCH …) is numeric, SQLite's julianday a float.
_LAG_SECONDS = Numeric().with_variant(Float(), "sqlite")


class WebhookHealthHour(Base):
    """`ops_webhook_health` of one closed hour and event type, summarized once the hour is over
    (processor.ops.webhook_health): the view reads these rows instead of the hour's events.
    `hour` is the view's: a UTC timestamp on PostgreSQL, `YYYY-MM-DD HH:00:00` text on SQLite.
    `failed` and `processed` are not kept: the view counts the failed events live."""

    __tablename__ = "webhook_health_hours"

    hour: Mapped[Any] = mapped_column(
        DateTime().with_variant(String(19), "sqlite"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(255), primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger)
    duplicates: Mapped[int] = mapped_column(BigInteger)
    ignored: Mapped[int] = mapped_column(BigInteger)
    avg_lag_seconds: Mapped[Any | None] = mapped_column(_LAG_SECONDS)
    p50_lag_seconds: Mapped[Any | None] = mapped_column(_LAG_SECONDS)
    p95_lag_seconds: Mapped[Any | None] = mapped_column(_LAG_SECONDS)
    max_lag_seconds: Mapped[Any | None] = mapped_column(_LAG_SECONDS)
    reconciled: Mapped[int] = mapped_column(BigInteger)
