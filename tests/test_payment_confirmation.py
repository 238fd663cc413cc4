"""Confirming a payment from what Stripe says about the session, never from the turn's
entities: once, for the order it names, and only when Stripe vouches for it."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import pytest

from actions.orders.model import Order
from actions.orders.records import with_order
from actions.orders.states import OrderStatus
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payments.checkout_links import create_payment_link
from actions.payments.errors import StripeUnavailable
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, slot_updates
from tests.support.stripe_checkout import (
    SESSIONS,
    awaiting_order,
    paid_event,
    run,
    run_stripe_action,
)


def test_a_payment_is_confirmed_from_stripes_answer_not_the_entities(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    forged: dict[str, Any] = {
        "amount_total": 1,
        "currency": "usd",
        "livemode": True,
        "payment_intent": "pi_x",
    }
    messages, events = run_stripe_action(
        ActionPaymentSucceeded(), paid_event(order, session_id, **forged)
    )
    slots = slot_updates(events)
    assert slots["order_status"] == "paid"
    assert slots["order_payment_intent"] == stripe_env.sessions[session_id]["payment_intent"]
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert stripe_env.requests_to("GET", f"{SESSIONS}/{session_id}")


def test_a_payment_is_confirmed_once(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    paid = Order.from_slots({**order.to_slots(), **slot_updates(events)})
    assert paid is not None and paid.status == OrderStatus.PAID
    again = run_stripe_action(ActionPaymentSucceeded(), paid_event(paid, session_id))
    assert again == ([], [])


def test_payment_for_a_replaced_order_confirms_that_order(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog).moved_to(OrderStatus.CANCELLED)
    stripe_env.complete_late(str(first.checkout_session_id))
    second = Order.start(catalog, {"decaf-beans": 1}).with_link("cs_test_2", "https://pay/2")
    slots = {**second.to_slots(), "orders": with_order(None, first)}
    tracker = paid_event(first, str(first.checkout_session_id), slots)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    (message,) = messages
    assert f"Order {first.id} is confirmed" in message["text"]
    assert "2 × Espresso" in message["text"]
    updated = slot_updates(events)
    assert updated["orders"][first.id]["order_status"] == "paid"
    assert updated["orders"][second.id]["order_status"] == "awaiting_payment"
    assert "order_id" not in updated  # the open second order stays the one discussed


def test_payment_for_a_cancelled_order_is_confirmed(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    cancelled = awaiting_order(stripe_env, catalog).moved_to(OrderStatus.CANCELLED)
    stripe_env.complete_late(str(cancelled.checkout_session_id))
    slots = {"orders": with_order(None, cancelled)}  # cancelled: no current order
    tracker = paid_event(cancelled, str(cancelled.checkout_session_id), slots)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert f"Order {cancelled.id} is confirmed" in messages[0]["text"]
    assert slot_updates(events)["order_id"] == cancelled.id


def other_orders_session(fake: StripeEmulator, catalog: Catalog) -> str:
    other = run(create_payment_link(Order.start(catalog, {"espresso-beans": 2}), CUSTOMER))
    fake.complete(other.session_id)
    return other.session_id


@pytest.mark.parametrize("case", ["unpaid", "another_order", "unknown", "amount", "debit"])
def test_a_payment_stripe_does_not_vouch_for_is_not_confirmed(
    stripe_env: StripeEmulator, catalog: Catalog, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    if case == "another_order":  # paid, same amount, but its metadata names another order
        session_id = other_orders_session(stripe_env, catalog)
    elif case == "unknown":
        session_id = "cs_test_" + secrets.token_hex(24)
    elif case == "amount":  # the conversation's order differs from what Stripe charged
        stripe_env.complete(session_id)
        order = replace(order, lines=(replace(order.lines[0], quantity=3),))
    elif case == "debit":
        stripe_env.act(session_id, "pay_by_debit")
    verified: dict[str, Any] = {"amount_total": order.total, "currency": "eur", "livemode": False}
    tracker = paid_event(order, session_id, payment_intent="pi_test_x", **verified)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert events == []
    assert "checking it" in messages[0]["text"]
    assert f"payment not confirmed: event=evt_test_second order={order.id}" in caplog.text


def test_a_payment_turn_fails_when_stripe_cannot_answer_so_the_event_is_replayed(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = awaiting_order(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    stripe_env.complete(session_id)
    stripe_env.queue_failures(500, 500, 500)
    with pytest.raises(StripeUnavailable):
        run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, session_id))
    assert slot_updates(events)["order_status"] == "paid"  # the replay confirms


def test_a_payment_told_again_for_an_order_paid_before_sessions_were_recorded_is_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    order = awaiting_order(stripe_env, catalog)
    stripe_env.complete(str(order.checkout_session_id))
    legacy = order.moved_to(OrderStatus.PAID)  # no paid_session: recorded by older code
    caplog.set_level("ERROR", logger="actions.payment_confirmation_actions")
    tracker = paid_event(legacy, str(order.checkout_session_id))
    assert run_stripe_action(ActionPaymentSucceeded(), tracker) == ([], [])
    assert "paid before its session was recorded, not confirmed again" in caplog.text
    assert "whether it is a second payment to refund: event=" in caplog.text
