"""The recipient comes from our `customers` row, else from the Stripe Customer (the sandbox)."""

from __future__ import annotations

from tests.integration.notifier.factories import first_notification, only_notification, open_case


def test_stripe_customer_is_the_fallback(
    sessions, clock, smtp_server, make_notifier, sandbox
) -> None:  # type: ignore[no-untyped-def]
    customer = sandbox.client.v1.customers.create(
        {"email": "kenji@example.jp", "name": "佐藤 健二", "preferred_locales": ["ja-JP", "en"]}
    )
    case_id = open_case(
        sessions, now=clock(), customer_id=customer.id, email=None, currency="jpy", amount=1200
    )
    assert make_notifier(smtp_server.url, stripe_client=sandbox.client).run_batch()["sent"] == 1
    [mail] = smtp_server.wait_for(1)
    assert mail.envelope_to == ("kenji@example.jp",)
    assert mail.message["To"].addresses[0].display_name == "佐藤 健二"
    assert "￥1,200" in mail.message["Subject"]
    row = first_notification(sessions, case_id)
    assert (row.recipient, row.locale) == ("kenji@example.jp", "ja")


def test_our_own_row_wins_over_stripe(sessions, clock, smtp_server, make_notifier, sandbox) -> None:  # type: ignore[no-untyped-def]
    customer = sandbox.client.v1.customers.create({"email": "old@example.com"})
    open_case(sessions, now=clock(), customer_id=customer.id, email="new@example.com")
    make_notifier(smtp_server.url, stripe_client=sandbox.client).run_batch()
    assert smtp_server.wait_for(1)[0].envelope_to == ("new@example.com",)


def test_deleted_stripe_customer_is_dead(
    sessions, clock, smtp_server, make_notifier, sandbox
) -> None:  # type: ignore[no-untyped-def]
    customer = sandbox.client.v1.customers.create({"email": "gone@example.com"})
    sandbox.client.v1.customers.delete(customer.id)
    case_id = open_case(sessions, now=clock(), customer_id=customer.id, email=None)
    assert make_notifier(smtp_server.url, stripe_client=sandbox.client).run_batch()["dead"] == 1
    assert "no email address" in (only_notification(sessions, case_id).last_error or "")
    assert smtp_server.messages == []


def test_unknown_stripe_customer_is_dead(
    sessions, clock, smtp_server, make_notifier, sandbox
) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock(), customer_id="cus_nobody", email=None)
    assert make_notifier(smtp_server.url, stripe_client=sandbox.client).run_batch()["dead"] == 1
    assert "does not know" in (only_notification(sessions, case_id).last_error or "")


def test_stripe_unreachable_is_retried(sessions, clock, smtp_server, make_notifier) -> None:  # type: ignore[no-untyped-def]
    case_id = open_case(sessions, now=clock(), customer_id="cus_elsewhere", email=None)
    # make_notifier's default Stripe client points at a port where nothing listens.
    assert make_notifier(smtp_server.url).run_batch()["retry"] == 1
    row = only_notification(sessions, case_id)
    assert row.status == "pending" and "could not read customer" in (row.last_error or "")
