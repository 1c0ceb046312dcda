"""Every handler against the real database, including late and out-of-order deliveries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from processor.checkout.setup_records import AttemptRecord, record_attempt
from processor.clock import from_unix
from processor.db.models import (
    Charge,
    Notification,
    PaymentMethod,
    RecoveryCase,
    SetupAttempt,
)
from processor.recovery.cases import PaymentFailure, record_payment_failure
from tests.fixtures.database import FakeClock
from tests.fixtures.events import (
    CREATED,
    card_method,
    decline,
    payment_intent,
    sepa_method,
    setup_intent,
    stripe_event,
)
from tests.integration.webhooks.conftest import Deliver

One = Callable[..., Any]
Count = Callable[..., int]


# -- setup intents ---------------------------------------------------------------------------


def test_setup_intent_succeeded_creates_the_attempt_and_names_the_method(
    deliver: Deliver, one: One
) -> None:
    intent = setup_intent("seti_1", payment_method="pm_1")
    deliver(stripe_event("setup_intent.succeeded", intent))
    attempt = one(SetupAttempt, setup_intent_id="seti_1")
    assert (attempt.status, attempt.payment_method_id, attempt.customer_id) == (
        "succeeded", "pm_1", "cus_test",
    )
    assert attempt.state_changed_at == from_unix(CREATED)
    method = one(PaymentMethod, id="pm_1")
    assert (method.customer_id, method.setup_intent_id, method.status) == (
        "cus_test", "seti_1", "active",
    )
    assert method.type is None and method.details_updated_at is None


def test_payment_method_attached_fills_the_details_whichever_came_first(
    deliver: Deliver, one: One
) -> None:
    deliver(stripe_event("payment_method.attached", card_method("pm_a"), created=CREATED))
    deliver(stripe_event("setup_intent.succeeded",
                         setup_intent("seti_a", payment_method="pm_a"), created=CREATED + 1))
    deliver(stripe_event("setup_intent.succeeded",
                         setup_intent("seti_b", payment_method="pm_b"), created=CREATED))
    deliver(stripe_event("payment_method.attached", sepa_method("pm_b"), created=CREATED + 1))
    card = one(PaymentMethod, id="pm_a")
    assert (card.type, card.card_brand, card.card_last4, card.card_exp_month,
            card.card_exp_year, card.card_funding, card.card_country, card.allow_redisplay) == (
        "card", "visa", "4242", 12, 2034, "credit", "US", "always",
    )
    assert (card.setup_intent_id, card.customer_id) == ("seti_a", "cus_test")
    assert card.attached_at == card.details_updated_at == from_unix(CREATED)
    sepa = one(PaymentMethod, id="pm_b")
    assert (sepa.type, sepa.sepa_last4, sepa.sepa_bank_code, sepa.sepa_country) == (
        "sepa_debit", "3000", "37040044", "DE",
    )
    assert sepa.setup_intent_id == "seti_b"
    assert sepa.attached_at == from_unix(CREATED)


def test_setup_failed_records_the_error(deliver: Deliver, one: One) -> None:
    error = {"code": "card_declined", "decline_code": "insufficient_funds",
             "message": "Your card has insufficient funds.", "type": "card_error"}
    intent = setup_intent("seti_f", status="requires_payment_method", last_setup_error=error)
    deliver(stripe_event("setup_intent.setup_failed", intent))
    attempt = one(SetupAttempt, setup_intent_id="seti_f")
    assert (attempt.status, attempt.error_code, attempt.decline_code, attempt.error_message) == (
        "requires_payment_method", "card_declined", "insufficient_funds",
        "Your card has insufficient funds.",
    )


def test_an_older_setup_event_never_undoes_a_newer_state(deliver: Deliver, one: One) -> None:
    done = setup_intent("seti_o", payment_method="pm_o")
    deliver(stripe_event("setup_intent.succeeded", done, created=CREATED + 10))
    deliver(stripe_event("setup_intent.requires_action",
                         setup_intent("seti_o", status="requires_action"), created=CREATED))
    failed = setup_intent("seti_o", status="requires_payment_method",
                          last_setup_error={"code": "setup_intent_authentication_failure"})
    deliver(stripe_event("setup_intent.setup_failed", failed, created=CREATED + 5))
    attempt = one(SetupAttempt, setup_intent_id="seti_o")
    assert (attempt.status, attempt.error_code) == ("succeeded", None)
    assert attempt.state_changed_at == from_unix(CREATED + 10)


def test_within_one_second_the_later_stage_wins(deliver: Deliver, one: One) -> None:
    done = setup_intent("seti_t", payment_method="pm_t")
    deliver(stripe_event("setup_intent.succeeded", done, created=CREATED))
    deliver(stripe_event("setup_intent.requires_action",
                         setup_intent("seti_t", status="requires_action"), created=CREATED))
    assert one(SetupAttempt, setup_intent_id="seti_t").status == "succeeded"


def test_an_event_moves_the_row_the_checkout_endpoint_wrote(
    deliver: Deliver, one: One, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    record_attempt(sessions, clock, AttemptRecord(
        customer_id="cus_test", confirmation_token_id="ctoken_1", setup_intent_id="seti_c",
        status="requires_action",
    ))
    deliver(stripe_event("setup_intent.succeeded", setup_intent("seti_c", payment_method="pm_c")))
    attempt = one(SetupAttempt, setup_intent_id="seti_c")
    assert (attempt.status, attempt.confirmation_token_id, attempt.payment_method_id) == (
        "succeeded", "ctoken_1", "pm_c",
    )


def lost_answer(sessions: sessionmaker[Session], clock: FakeClock, customer_id: str = "cus_test",
                ctoken: str = "ctoken_1", status: str = "error") -> None:
    """The row the checkout endpoint writes when Stripe's answer to the create was lost."""
    record_attempt(sessions, clock, AttemptRecord(
        customer_id=customer_id, confirmation_token_id=ctoken, status=status,
        error_code="APIError", error_message="HTTP 500",
    ))


def with_token(intent: dict[str, Any], ctoken: str = "ctoken_1") -> dict[str, Any]:
    return {**intent, "metadata": {"confirmation_token": ctoken}}


def test_an_event_adopts_the_row_of_a_lost_answer(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    lost_answer(sessions, clock)
    deliver(stripe_event("setup_intent.succeeded",
                         with_token(setup_intent("seti_l", payment_method="pm_l"))))
    assert count(SetupAttempt) == 1
    attempt = one(SetupAttempt, setup_intent_id="seti_l")
    assert (attempt.status, attempt.customer_id, attempt.confirmation_token_id) == (
        "succeeded", "cus_test", "ctoken_1",
    )
    assert (attempt.error_code, attempt.error_message, attempt.payment_method_id) == (
        None, None, "pm_l",
    )
    assert attempt.state_changed_at == from_unix(CREATED)


def test_a_lost_answer_after_the_event_writes_no_row(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    deliver(stripe_event("setup_intent.succeeded",
                         with_token(setup_intent("seti_w", payment_method="pm_w"))))
    lost_answer(sessions, clock)
    assert count(SetupAttempt) == 1
    attempt = one(SetupAttempt, setup_intent_id="seti_w")
    assert (attempt.status, attempt.confirmation_token_id) == ("succeeded", "ctoken_1")


def test_a_replayed_answer_adopts_the_row_of_a_lost_answer(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    lost_answer(sessions, clock)
    record_attempt(sessions, clock, AttemptRecord(
        customer_id="cus_test", confirmation_token_id="ctoken_1", setup_intent_id="seti_r",
        status="succeeded", payment_method_id="pm_r",
    ))
    deliver(stripe_event("setup_intent.succeeded",
                         with_token(setup_intent("seti_r", payment_method="pm_r"))))
    assert count(SetupAttempt) == 1
    attempt = one(SetupAttempt, setup_intent_id="seti_r")
    assert (attempt.status, attempt.error_code, attempt.confirmation_token_id) == (
        "succeeded", None, "ctoken_1",
    )


def test_only_the_error_row_of_the_same_customer_and_token_is_adopted(
    deliver: Deliver, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    lost_answer(sessions, clock, ctoken="ctoken_other")
    lost_answer(sessions, clock, customer_id="cus_other")
    lost_answer(sessions, clock, status="rejected")
    deliver(stripe_event("setup_intent.succeeded",
                         with_token(setup_intent("seti_n", payment_method="pm_n"))))
    record_attempt(sessions, clock, AttemptRecord(
        customer_id="cus_test", confirmation_token_id="ctoken_1", setup_intent_id="seti_n",
        status="succeeded",
    ))
    assert count(SetupAttempt) == 4
    assert count(SetupAttempt, setup_intent_id=None) == 3
    assert count(SetupAttempt, setup_intent_id="seti_n", confirmation_token_id="ctoken_1") == 1


def test_an_event_without_the_token_adopts_nothing(
    deliver: Deliver, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    lost_answer(sessions, clock)
    deliver(stripe_event("setup_intent.succeeded", setup_intent("seti_x", payment_method="pm_x")))
    assert count(SetupAttempt) == 2
    assert count(SetupAttempt, setup_intent_id=None, status="error") == 1


def test_an_event_and_a_lost_answer_at_the_same_moment_leave_one_row(
    deliver: Deliver, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    tokens = [f"ctoken_race{index}" for index in range(12)]
    start = threading.Barrier(2)

    def event(token: str) -> None:
        start.wait()
        deliver(stripe_event("setup_intent.succeeded", with_token(
            setup_intent(f"seti_{token}", payment_method=f"pm_{token}"), token)))

    def answer(token: str) -> None:
        start.wait()
        lost_answer(sessions, clock, ctoken=token)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for token in tokens:
            for done in [pool.submit(event, token), pool.submit(answer, token)]:
                done.result(timeout=30)
    for token in tokens:
        assert count(SetupAttempt, confirmation_token_id=token) == 1
        assert count(SetupAttempt, confirmation_token_id=token, status="succeeded") == 1


# -- payment methods -------------------------------------------------------------------------


def test_a_detached_method_is_never_reactivated_by_a_late_attach(
    deliver: Deliver, one: One
) -> None:
    deliver(stripe_event("payment_method.detached", card_method("pm_d", customer=None),
                         created=CREATED + 60))
    deliver(stripe_event("payment_method.attached", card_method("pm_d"), created=CREATED))
    deliver(stripe_event("setup_intent.succeeded", setup_intent("seti_d", payment_method="pm_d"),
                         created=CREATED))
    method = one(PaymentMethod, id="pm_d")
    assert (method.status, method.customer_id, method.card_last4) == (
        "detached", "cus_test", "4242",
    )
    assert method.detached_at == from_unix(CREATED + 60)
    assert method.attached_at == from_unix(CREATED)


# -- payment intents -------------------------------------------------------------------------


def reserve_charge(sessions: sessionmaker[Session], clock: FakeClock, reference: str,
                   payment_intent_id: str | None = None) -> None:
    with sessions.begin() as session:
        session.add(Charge(
            reference=reference, idempotency_key=f"charge:{reference}", customer_id="cus_test",
            payment_method_id="pm_failed", amount=2000, currency="usd",
            payment_intent_id=payment_intent_id, status="pending", attempt_count=1,
            created_at=clock(), updated_at=clock(),
        ))


def failed(intent_id: str, error: dict[str, Any], created: int = CREATED,
           **intent: Any) -> dict[str, Any]:
    return stripe_event(
        "payment_intent.payment_failed",
        payment_intent(intent_id, status="requires_payment_method", last_payment_error=error,
                       latest_charge=error["charge"], **intent),
        created=created,
    )


def test_payment_failed_opens_an_authentication_case_with_its_first_email(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-1", "pi_auth")
    error = decline("authentication_required", "authentication_required")
    deliver(failed("pi_auth", error))
    case = one(RecoveryCase, payment_intent_id="pi_auth")
    assert (case.kind, case.status, case.amount, case.currency, case.customer_id,
            case.payment_method_id, case.error_code, case.decline_code) == (
        "authentication_required", "open", 2000, "usd", "cus_test", "pm_failed",
        "authentication_required", "authentication_required",
    )
    assert case.failure_message == error["message"]
    assert case.opened_at == case.last_failure_at == from_unix(CREATED)
    assert case.last_charge_id == error["charge"]
    notification = one(Notification, case_id=case.id)
    assert (notification.kind, notification.sequence, notification.status) == (
        "initial", 0, "pending",
    )
    charge = one(Charge, reference="order-1")
    assert (charge.status, charge.error_code, charge.decline_code) == (
        "failed", "authentication_required", "authentication_required",
    )


def test_a_card_declined_asking_for_authentication_is_an_authentication_case(
    deliver: Deliver, one: One
) -> None:
    deliver(failed("pi_soft", decline("card_declined", "authentication_required")))
    assert one(RecoveryCase, payment_intent_id="pi_soft").kind == "authentication_required"


def test_other_declines_need_a_new_payment_method(deliver: Deliver, one: One) -> None:
    deliver(failed("pi_funds", decline("card_declined", "insufficient_funds")))
    deliver(failed("pi_expired", decline("expired_card")))
    assert one(RecoveryCase, payment_intent_id="pi_funds").kind == "payment_method_required"
    assert one(RecoveryCase, payment_intent_id="pi_expired").kind == "payment_method_required"


def test_the_charge_row_is_found_by_reference_before_the_charger_stored_the_intent(
    deliver: Deliver, one: One, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-2")
    error = decline("card_declined", "insufficient_funds")
    deliver(failed("pi_ref", error, metadata={"reference": "order-2"}))
    charge = one(Charge, reference="order-2")
    assert (charge.payment_intent_id, charge.status, charge.decline_code) == (
        "pi_ref", "failed", "insufficient_funds",
    )


def test_a_second_failure_updates_the_case_and_writes_no_second_email(
    deliver: Deliver, one: One, count: Count
) -> None:
    deliver(failed("pi_two", decline("authentication_required", "authentication_required")))
    deliver(failed("pi_two", decline("card_declined", "insufficient_funds"), CREATED + 60))
    case = one(RecoveryCase, payment_intent_id="pi_two")
    assert (case.kind, case.decline_code, case.failure_count) == (
        "payment_method_required", "insufficient_funds", 2,
    )
    assert case.last_failure_at == from_unix(CREATED + 60)
    assert count(Notification) == 1


def test_the_charger_and_the_webhook_reporting_one_attempt_count_it_once(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    error = decline("card_declined", "insufficient_funds")
    with sessions.begin() as session:
        record_payment_failure(session, PaymentFailure(
            payment_intent_id="pi_both", customer_id="cus_test", payment_method_id="pm_failed",
            amount=2000, currency="usd", code="card_declined", decline_code="insufficient_funds",
            message=error["message"], failed_at=clock() + timedelta(seconds=2),
            charge_id=error["charge"],
        ), now=clock())
    deliver(failed("pi_both", error))
    case = one(RecoveryCase, payment_intent_id="pi_both")
    assert case.failure_count == 1
    assert count(Notification) == 1


def test_payment_succeeded_recovers_the_case_and_cancels_its_emails(
    deliver: Deliver, one: One, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-3", "pi_win")
    deliver(failed("pi_win", decline("card_declined", "insufficient_funds")))
    deliver(stripe_event("payment_intent.succeeded", payment_intent("pi_win"),
                         created=CREATED + 3600))
    case = one(RecoveryCase, payment_intent_id="pi_win")
    assert (case.status, case.resolved_at) == ("recovered", from_unix(CREATED + 3600))
    assert one(Notification, case_id=case.id).status == "canceled"
    charge = one(Charge, reference="order-3")
    assert (charge.status, charge.completed_at) == ("succeeded", from_unix(CREATED + 3600))


def test_a_failure_arriving_after_the_success_leaves_the_case_recovered(
    deliver: Deliver, one: One, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-4", "pi_late")
    deliver(stripe_event("payment_intent.succeeded", payment_intent("pi_late"),
                         created=CREATED + 3600))
    deliver(failed("pi_late", decline("card_declined", "insufficient_funds")))
    case = one(RecoveryCase, payment_intent_id="pi_late")
    assert (case.status, case.resolved_at) == ("recovered", from_unix(CREATED + 3600))
    assert one(Notification, case_id=case.id).status == "canceled"
    assert one(Charge, reference="order-4").status == "succeeded"


def test_payment_canceled_closes_the_case_as_canceled(
    deliver: Deliver, one: One, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-5", "pi_cancel")
    deliver(failed("pi_cancel", decline("card_declined", "generic_decline")))
    deliver(stripe_event("payment_intent.canceled", payment_intent("pi_cancel", status="canceled"),
                         created=CREATED + 60))
    case = one(RecoveryCase, payment_intent_id="pi_cancel")
    assert (case.status, case.resolved_at) == ("canceled", from_unix(CREATED + 60))
    assert one(Notification, case_id=case.id).status == "canceled"
    assert one(Charge, reference="order-5").status == "failed"


def test_a_success_without_a_case_only_settles_the_charge(
    deliver: Deliver, one: One, count: Count, sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    reserve_charge(sessions, clock, "order-6", "pi_ok")
    deliver(stripe_event("payment_intent.succeeded", payment_intent("pi_ok")))
    assert one(Charge, reference="order-6").status == "succeeded"
    assert count(RecoveryCase) == 0
