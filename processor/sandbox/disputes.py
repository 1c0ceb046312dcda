"""Disputes: Stripe's dispute test cards open one on the charge as soon as it succeeds.

`pm_card_createDispute` opens a fraud chargeback; `pm_card_createDisputeInquiry` an inquiry.
"""

from __future__ import annotations

from typing import Any

from processor.sandbox.cards import DisputeKind, TestCard
from processor.sandbox.context import Call
from processor.sandbox.ids import new_id
from processor.sandbox.store import StripeObject

RESPONSE_WINDOW_SECONDS = 7 * 24 * 3600  # time left to answer, as test-mode disputes give
EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "enhanced_evidence",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


def _evidence() -> dict[str, Any]:
    evidence: dict[str, Any] = dict.fromkeys(EVIDENCE_FIELDS)
    evidence["enhanced_evidence"] = {}
    return evidence


def open_if_dispute_card(call: Call, charge: StripeObject) -> None:
    """After a capture: a dispute test card's charge is disputed at once."""
    method = call.store.get("payment_method", charge["payment_method"])
    card: TestCard | None = (method or {}).get("_card")
    if card is not None and card.dispute is not None:
        open_dispute(call, charge, card.dispute)


def open_dispute(call: Call, charge: StripeObject, kind: DisputeKind) -> StripeObject:
    """Create the dispute, mark the charge disputed, emit `charge.dispute.created`."""
    card = charge["payment_method_details"].get("card") or {}
    dispute: StripeObject = {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": call.now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": _evidence(),
        "evidence_details": {
            "due_by": call.now + RESPONSE_WINDOW_SECONDS,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        "is_charge_refundable": kind.inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": card.get("brand"),
                "case_type": "inquiry" if kind.inquiry else "chargeback",
                "network": card.get("network") or card.get("brand") or "visa",
                "network_reason_code": kind.network_reason_code,
            },
        },
        "reason": kind.reason,
        "status": "warning_needs_response" if kind.inquiry else "needs_response",
    }
    call.store.add(dispute)
    charge["disputed"] = True
    call.store.touch()
    call.emit("charge.dispute.created", dispute)
    return dispute
