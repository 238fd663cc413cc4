"""A cancelled order paid afterwards: through a recovered copy of its expired link it is
refunded (Stripe Refunds, idempotency key) and never confirmed; through a session the order
made itself it is confirmed, as before. Actions run as the action server runs them, against
the Stripe emulator on loopback."""

from __future__ import annotations

from typing import Any

import requests

from actions.flow_actions import ActionFlowStep
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, slot_updates
from tests.support.stripe_checkout import (
    awaiting_order,
    flow_completion,
    paid_event,
    run_stripe_action,
)


def expired_with_recovery(stripe_env: StripeEmulator, catalog: Catalog) -> Order:
    """An order whose link expired and whose follow-up was Stripe's recovery URL."""
    order = awaiting_order(stripe_env, catalog)
    stripe_env.expire(str(order.checkout_session_id))
    return order.moved_to(OrderStatus.EXPIRED, followed_up=True, recovery_sent=True)


def paid_copy(stripe_env: StripeEmulator, order: Order) -> dict[str, Any]:
    """The customer opens the recovery URL and pays the copy it opens."""
    original = stripe_env.sessions[str(order.checkout_session_id)]
    assert requests.get(original["after_expiration"]["recovery"]["url"], timeout=5).ok
    (copy,) = [s for s in stripe_env.sessions.values() if s["recovered_from"] == original["id"]]
    stripe_env.complete(copy["id"])
    return stripe_env.sessions[copy["id"]]


def test_an_order_replaced_by_a_new_flow_is_refunded_when_its_recovery_copy_is_paid(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = expired_with_recovery(stripe_env, catalog)
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=first.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    told = messages[0]["text"]
    assert f"Your earlier order {first.id} wasn't paid, so I've cancelled it." in told
    assert "we'll refund that payment automatically" in told and "no longer works" not in told
    slots = {**first.to_slots(), **slot_updates(events)}
    assert slots["orders"][first.id]["order_status"] == "cancelled"

    copy = paid_copy(stripe_env, first)
    payment = paid_event(first, copy["id"], slots=slots)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), payment)
    (message,) = messages
    assert f"Order {first.id} was cancelled" in message["text"]
    assert "refunded it in full" in message["text"] and "confirmed" not in message["text"]
    assert events == []  # the order stays cancelled
    (refund,) = stripe_env.refunded_of(copy["payment_intent"])
    assert (refund["amount"], refund["reason"]) == (copy["amount_total"], "requested_by_customer")
    refunds = stripe_env.requests_to("POST", "/v1/refunds")
    assert refunds[0].headers["Idempotency-Key"] == f"refund-cancelled-{copy['payment_intent']}"

    # The same turn replayed refunds nothing twice (the idempotency key).
    run_stripe_action(ActionPaymentSucceeded(), payment)
    assert len(stripe_env.refunded_of(copy["payment_intent"])) == 1


def test_a_cancelled_order_paid_through_its_own_link_is_still_confirmed(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)  # paid a moment before the cancellation took effect
    cancelled = order.moved_to(OrderStatus.CANCELLED)
    messages, events = run_stripe_action(
        ActionPaymentSucceeded(), paid_event(cancelled, session_id)
    )
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert slot_updates(events)["order_status"] == "paid"
    assert stripe_env.requests_to("POST", "/v1/refunds") == []


def test_an_expired_order_paid_through_its_recovery_copy_is_confirmed_once(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = expired_with_recovery(stripe_env, catalog)
    copy = paid_copy(stripe_env, order)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, copy["id"]))
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    updated = slot_updates(events)
    assert (updated["order_status"], updated["order_paid_session"]) == ("paid", copy["id"])
    assert stripe_env.requests_to("POST", "/v1/refunds") == []
