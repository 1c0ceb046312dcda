"""`setup_attempts` rows: one per SetupIntent, moved by events in any order.

The merge rule, in Python (`merge_attempt_changes`, within a batch) and in SQL (the upsert's
conflict clause, against the stored row): a state applies when it is newer than the row's
`state_changed_at`; within the same second the later stage of the flow wins
(requires_action < failed < canceled < succeeded). Both are stored as one number,
`state_rank`, so SQL compares them in one step. Rows the checkout endpoint wrote (no rank)
always take an event's state. The method stays known once named.

Lost answers: when Stripe's answer to the create was lost, the checkout endpoint stored an
`error` row without a SetupIntent id. The intent carries the ConfirmationToken in its metadata,
so the first write for that SetupIntent adopts that row instead of adding a second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, exists, func, or_, select, update

from processor.db.bulk import Write, insert_rows, row_source, rows_parameters
from processor.db.locks import lock_keys_until_commit
from processor.db.models import SetupAttempt, table_of

# Tie-break for states of the same second: how far along the flow each one is.
STAGE = {
    "requires_payment_method": 1,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "setup_failed": 4,
    "canceled": 5,
    "succeeded": 6,
}
_FAILED_STAGE = STAGE["setup_failed"]


def attempt_stage(status: str, error_code: str | None) -> int:
    """A failed setup goes back to `requires_payment_method` with its error: that is `failed`."""
    if status == "requires_payment_method" and error_code is not None:
        return _FAILED_STAGE
    return STAGE.get(status, 0)


RANKS_PER_SECOND = 8  # more than the highest stage


@dataclass(frozen=True, slots=True)
class AttemptChange:
    """The state one event reports for a SetupIntent."""

    setup_intent_id: str
    customer_id: str | None
    confirmation_token_id: str | None
    status: str
    payment_method_id: str | None
    error_code: str | None
    decline_code: str | None
    error_message: str | None
    state_changed_at: datetime
    created_at: datetime
    # Stripe's SetupAttempt and the bank method's type (`processor.checkout.generated`).
    latest_attempt_id: str | None = None
    payment_method_type: str | None = None

    @property
    def recency(self) -> tuple[datetime, int]:
        return self.state_changed_at, attempt_stage(self.status, self.error_code)


def state_rank(change: AttemptChange) -> int:
    """`recency` as one number, stored with the row so that SQL compares states in one step."""
    seconds = int(change.state_changed_at.timestamp())
    return seconds * RANKS_PER_SECOND + attempt_stage(change.status, change.error_code)


def merge_attempt_changes(changes: Iterable[AttemptChange]) -> dict[str, AttemptChange]:
    """One change per SetupIntent: the newest state, keeping what older ones knew."""
    merged: dict[str, AttemptChange] = {}
    for change in changes:
        held = merged.get(change.setup_intent_id)
        if held is None:
            merged[change.setup_intent_id] = change
            continue
        newer, older = (change, held) if change.recency > held.recency else (held, change)
        merged[change.setup_intent_id] = AttemptChange(
            setup_intent_id=newer.setup_intent_id,
            customer_id=older.customer_id or newer.customer_id,
            confirmation_token_id=older.confirmation_token_id or newer.confirmation_token_id,
            status=newer.status,
            payment_method_id=newer.payment_method_id or older.payment_method_id,
            error_code=newer.error_code,
            decline_code=newer.decline_code,
            error_message=newer.error_message,
            state_changed_at=newer.state_changed_at,
            created_at=min(newer.created_at, older.created_at),
            latest_attempt_id=older.latest_attempt_id or newer.latest_attempt_id,
            payment_method_type=older.payment_method_type or newer.payment_method_type,
        )
    return merged


_ATTEMPTS = table_of(SetupAttempt)
_STATE_COLUMNS = (
    "status", "error_code", "decline_code", "error_message", "state_changed_at", "state_rank",
)
_ROW_COLUMNS = (
    "setup_intent_id", "customer_id", "confirmation_token_id", "status", "payment_method_id",
    "error_code", "decline_code", "error_message", "state_changed_at", "state_rank",
    "created_at", "updated_at", "latest_attempt_id", "payment_method_type",
)
_FILLED_ONCE = ("latest_attempt_id", "payment_method_type")


_ROWS_PARAMETER = "attempt_rows"  # its own name: the upsert may be sent with other writes


def _upsert(dialect: str) -> Any:
    insert = insert_rows(dialect, _ATTEMPTS, _ROW_COLUMNS, parameter=_ROWS_PARAMETER)
    stored, new = _ATTEMPTS.c, insert.excluded
    # A row the checkout endpoint wrote has no rank yet: any event's state is newer.
    newer = func.coalesce(stored.state_rank, -1) < new.state_rank
    # An older state changes nothing, but may still fill what the row does not know yet.
    fills = or_(*((stored[name].is_(None) & new[name].is_not(None)) for name in _FILLED_ONCE))
    return insert.on_conflict_do_update(
        index_elements=["setup_intent_id"],
        set_={
            **{name: case((newer, new[name]), else_=stored[name]) for name in _STATE_COLUMNS},
            "payment_method_id": case(
                (newer, func.coalesce(new.payment_method_id, stored.payment_method_id)),
                else_=stored.payment_method_id,
            ),
            **{name: func.coalesce(stored[name], new[name]) for name in _FILLED_ONCE},
            "customer_id": func.coalesce(stored.customer_id, new.customer_id),
            "confirmation_token_id": func.coalesce(
                stored.confirmation_token_id, new.confirmation_token_id
            ),
            "updated_at": new.updated_at,
        },
        where=or_(newer, fills),
    )


_UPSERTS = {dialect: _upsert(dialect) for dialect in ("sqlite", "postgresql")}


def attempt_upsert(dialect: str, rows: Sequence[dict[str, Any]]) -> Write:
    """The upsert of `merge_attempts`' rows, with its parameters."""
    return _UPSERTS[dialect], rows_parameters(dialect, rows, _ROWS_PARAMETER)


_ADOPTION_COLUMNS = {
    "p_setup_intent_id": _ATTEMPTS.c.setup_intent_id.type,
    "p_customer_id": _ATTEMPTS.c.customer_id.type,
    "p_confirmation_token_id": _ATTEMPTS.c.confirmation_token_id.type,
    "p_updated_at": _ATTEMPTS.c.updated_at.type,
}
_ADOPTIONS_PARAMETER = "adoptions"


def _adopt_statement(adoption: Mapping[str, Any]) -> Any:
    """The adoption, reading its values from `adoption` (`row_source`'s columns: one
    statement per adoption, or on PostgreSQL one for all)."""
    # The oldest `error` row without a SetupIntent for this customer and token takes the id,
    # unless a row already holds it (the id is unique). Its error described the lost answer,
    # not the SetupIntent, so it is cleared for the outcome written next.
    orphan = _ATTEMPTS.alias("orphan")
    known = _ATTEMPTS.alias("known")
    intent_id = adoption["p_setup_intent_id"]
    oldest_orphan = (
        select(func.min(orphan.c.id))
        .where(
            orphan.c.setup_intent_id.is_(None),
            orphan.c.customer_id == adoption["p_customer_id"],
            orphan.c.confirmation_token_id == adoption["p_confirmation_token_id"],
            orphan.c.status == "error",
        )
        .scalar_subquery()
    )
    return (
        update(_ATTEMPTS)
        .where(
            # The orphan's own customer and token again: they join the rows to the table.
            _ATTEMPTS.c.customer_id == adoption["p_customer_id"],
            _ATTEMPTS.c.confirmation_token_id == adoption["p_confirmation_token_id"],
            _ATTEMPTS.c.id == oldest_orphan,
            ~exists().where(known.c.setup_intent_id == intent_id),
        )
        .values(
            setup_intent_id=intent_id,
            error_code=None,
            decline_code=None,
            error_message=None,
            updated_at=adoption["p_updated_at"],
        )
    )


# One statement per adoption, on any database (the single-row form of `row_source`).
_ADOPT_ORPHAN = _adopt_statement(row_source("sqlite", _ADOPTION_COLUMNS))
_ADOPT_ORPHANS = _adopt_statement(
    row_source("postgresql", _ADOPTION_COLUMNS, _ADOPTIONS_PARAMETER)
)


def lock_confirmation_tokens(connection: Connection, confirmation_token_ids: Iterable[str]) -> None:
    """Serialise, until commit, every write of an attempt made with these ConfirmationTokens.

    The webhook adopting an `error` row and the checkout endpoint deciding whether to write
    one would not see each other's uncommitted rows on PostgreSQL, and an orphan would stay.
    """
    lock_keys_until_commit(connection, confirmation_token_ids)


Adoption = tuple[str, str, str]  # (setup_intent_id, customer_id, confirmation_token_id)


def adopt_orphan_attempts(
    connection: Connection, adoptions: Sequence[Adoption], *, now: datetime
) -> None:
    """Give each SetupIntent's id to the `error` row its lost create answer left, if any.

    `adoptions` are (setup_intent_id, customer_id, confirmation_token_id); the caller holds the
    tokens' locks. The insert-or-merge that follows then finds that row: one attempt, one row.
    """
    if adoptions:
        connection.execute(_ADOPT_ORPHAN, _adoption_rows(adoptions, now))


def adoptions_write(
    adoptions: Sequence[Adoption], *, now: datetime
) -> tuple[Any, dict[str, Any]] | None:
    """PostgreSQL: `adopt_orphan_attempts` as one statement, to send with other writes after
    the tokens' locks; None if two adoptions share a customer and token (each in turn would
    adopt the next orphan: that takes `adopt_orphan_attempts`)."""
    if len({(customer, token) for _, customer, token in adoptions}) < len(adoptions):
        return None
    return _ADOPT_ORPHANS, rows_parameters(
        "postgresql", _adoption_rows(adoptions, now), _ADOPTIONS_PARAMETER
    )


def _adoption_rows(adoptions: Sequence[Adoption], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "p_setup_intent_id": intent_id,
            "p_customer_id": customer_id,
            "p_confirmation_token_id": token_id,
            "p_updated_at": now,
        }
        for intent_id, customer_id, token_id in adoptions
    ]


def merge_attempts(
    changes: Iterable[AttemptChange], *, now: datetime
) -> tuple[list[dict[str, Any]], list[Adoption]]:
    """Merge a batch's setup states: one row per SetupIntent for `attempt_upsert`, which the
    caller sends with its other writes, and the adoptions of the rows lost answers left
    (`adopt_orphan_attempts`), which must run before it. The caller holds the locks of the
    changes' ConfirmationTokens (`lock_confirmation_tokens`)."""
    merged = sorted(merge_attempt_changes(changes).items())
    adoptions = [
        (intent_id, change.customer_id, change.confirmation_token_id)
        for intent_id, change in merged
        if change.customer_id is not None and change.confirmation_token_id is not None
    ]
    rows = [
        {
            "setup_intent_id": intent_id,
            "customer_id": change.customer_id,
            "confirmation_token_id": change.confirmation_token_id,
            "status": change.status,
            "payment_method_id": change.payment_method_id,
            "error_code": change.error_code,
            "decline_code": change.decline_code,
            "error_message": change.error_message,
            "state_changed_at": change.state_changed_at,
            "state_rank": state_rank(change),
            "created_at": change.created_at,
            "updated_at": now,
            "latest_attempt_id": change.latest_attempt_id,
            "payment_method_type": change.payment_method_type,
        }
        for intent_id, change in merged
    ]
    return rows, adoptions
