"""Stopping an order's payment link at Stripe, directly and through the cancel action, and
what happens when it was paid (or its bank debit started) first."""

from __future__ import annotations

import pytest

from actions.flow_actions import ActionFlowStep
from actions.order_actions import ActionCancelOrder
from actions.orders.states import OrderStatus
from actions.payment_link_actions import ActionCreatePaymentLink
from actions.payments.errors import PaymentError, PaymentProcessing
from actions.payments.link_cancellation import CANCEL_FAILED, cancel_payment
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, slot_updates
from tests.support.stripe_checkout import (
    PAID_ALREADY,
    awaiting_order,
    espresso_order,
    flow_completion,
    run,
    run_stripe_action,
)


def test_cancel_expires_the_open_session(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    run(cancel_payment(order))
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_cancel_of_an_expired_session_is_fine(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.expire(str(order.checkout_session_id))
    run(cancel_payment(order))
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_cancel_of_a_paid_session_says_the_payment_went_through(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    with pytest.raises(PaymentError) as caught:
        run(cancel_payment(order))
    assert PAID_ALREADY in caught.value.customer_message
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "complete"


def test_cancel_of_a_session_whose_bank_debit_is_clearing_says_it_is_processing(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.act(str(order.checkout_session_id), "pay_by_debit")  # complete, unpaid
    with pytest.raises(PaymentProcessing) as caught:
        run(cancel_payment(order))
    assert f"order {order.id} is still being processed" in caught.value.customer_message
    tracker = make_tracker("flow_completed", flow_completion("tok-2"), slots=order.to_slots())
    messages, events = run_stripe_action(ActionFlowStep(), tracker)
    assert events == [] and len(stripe_env.sessions) == 1  # no new order, no new link
    assert "still being processed" in messages[0]["text"]


def test_after_a_bank_debit_failed_a_new_link_is_made(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    old = str(order.checkout_session_id)
    stripe_env.act(old, "pay_by_debit")
    stripe_env.act(old, "debit_fails")  # stays complete and unpaid at Stripe
    failed = order.moved_to(OrderStatus.PAYMENT_FAILED)
    messages, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    new = slot_updates(events)["checkout_session_id"]
    assert new not in (None, old) and stripe_env.sessions[new]["status"] == "open"
    assert stripe_env.sessions[new]["url"] in messages[0]["text"]


def test_cancel_without_a_session_does_not_call_stripe(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    run(cancel_payment(espresso_order(catalog)))
    assert stripe_env.requests == []


def test_cancel_when_stripe_fails_is_a_payment_error(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(PaymentError) as caught:
        run(cancel_payment(order))
    assert caught.value.customer_message == CANCEL_FAILED
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "open"


# --- through the cancel action ---------------------------------------------------------


def test_cancel_order_action_expires_the_session_and_archives_the_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    messages, events = run_stripe_action(
        ActionCancelOrder(), make_tracker("affirm", slots=order.to_slots())
    )
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"
    slots = slot_updates(events)
    assert slots["orders"][order.id]["order_status"] == "cancelled"
    assert slots["order_id"] is None
    assert f"Order {order.id} is cancelled" in messages[0]["text"]


def test_cancel_order_action_after_payment_keeps_the_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    messages, events = run_stripe_action(
        ActionCancelOrder(), make_tracker("affirm", slots=order.to_slots())
    )
    assert events == []
    assert PAID_ALREADY in messages[0]["text"]
