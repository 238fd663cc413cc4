"""An order paid twice: the second payment refunded (or the second subscription cancelled)
once, however often the turn is replayed, and logged for the shop."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payment_link_actions import ActionCreatePaymentLink
from actions.payments.checkout_links import create_payment_link
from actions.payments.client import stripe_client
from sandbox.stripe_api import StripeEmulator
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, make_tracker, slot_updates
from tests.support.stripe_checkout import awaiting_order, paid_event, run, run_stripe_action


def paid_twice(fake: StripeEmulator, catalog: Catalog, **items: int) -> tuple[Order, str]:
    """An order paid through its first session whose second session was paid too: the order
    as the conversation holds it, and the second session's id."""
    first = Order.start(catalog, items or {"espresso-beans": 2})
    link = run(create_payment_link(first, CUSTOMER))
    second = first.next_attempt(time.time())
    second_link = run(create_payment_link(second, CUSTOMER))
    fake.complete(link.session_id)
    order = second.with_link(second_link.session_id, second_link.url)
    paid = replace(order, sessions=(link.session_id, second_link.session_id)).paid_by(
        link.session_id, fake.sessions[link.session_id]["payment_intent"]
    )
    fake.complete_late(second_link.session_id)
    return paid, second_link.session_id


def test_a_second_payment_for_a_paid_order_is_refunded_once_and_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    pi = paid.payment_intent
    duplicate = stripe_env.sessions[second_id]["payment_intent"]

    caplog.set_level("INFO", logger="actions.duplicate_payments")
    for _ in range(2):  # the turn replayed: still one refund (idempotency key per payment)
        # the entity names the first payment: Stripe's answer names the one to refund
        messages, events = run_stripe_action(
            ActionPaymentSucceeded(), paid_event(paid, second_id, payment_intent=pi)
        )
        assert events == []
        assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
        assert "we refunded the second payment of €25.80" in messages[0]["text"]
    (refund,) = stripe_env.refunded_of(duplicate)
    assert refund["amount"] == 2580 and stripe_env.refunded_of(str(pi)) == []
    keys = {r.idempotency_key for r in stripe_env.requests_to("POST", "/v1/refunds")}
    assert keys == {f"refund-duplicate-{duplicate}"}
    logged = [
        r.getMessage() for r in caplog.records if "duplicate payment refunded" in r.getMessage()
    ]
    assert logged[0] == (
        f"duplicate payment refunded: event=evt_test_second order={paid.id} refund={refund['id']}"
    )


def test_the_connectors_duplicate_flag_refunds_whatever_the_tracker_says(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    unpaid = replace(paid, status=OrderStatus.AWAITING_PAYMENT, paid_session=None)
    tracker = paid_event(unpaid, second_id, duplicate_payment=True)
    messages, events = run_stripe_action(ActionPaymentSucceeded(), tracker)
    assert events == []  # never confirmed
    assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
    duplicate = stripe_env.sessions[second_id]["payment_intent"]
    assert [r["amount"] for r in stripe_env.refunded_of(duplicate)] == [2580]


def test_a_subscription_order_remembers_the_subscription_that_paid_it(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order = Order.start(catalog, {"coffee-club": 1})
    link = run(create_payment_link(order, CUSTOMER))
    stripe_env.complete(link.session_id)
    pending = order.with_link(link.session_id, link.url)
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(pending, link.session_id))
    subscription = stripe_env.sessions[link.session_id]["subscription"]
    assert subscription and slot_updates(events)["order_subscription"] == subscription


def test_a_second_subscription_is_cancelled_and_its_refund_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog, **{"coffee-club": 1})
    second_subscription = stripe_env.sessions[second_id]["subscription"]
    for _ in range(2):  # replayed: cancelled once, told again
        messages, events = run_stripe_action(
            ActionPaymentSucceeded(), paid_event(paid, second_id, duplicate_payment=True)
        )
        assert events == []
        assert "cancelled the second subscription" in messages[0]["text"]
    assert stripe_env.cancelled_subscriptions == {second_subscription}
    assert (
        "second subscription cancelled, refund its first payment by hand: "
        f"event=evt_test_second order={paid.id} subscription={second_subscription}"
    ) in caplog.text


def test_a_payment_through_an_older_session_confirms_and_stops_the_current_link(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    first = awaiting_order(stripe_env, catalog)
    failed = first.moved_to(OrderStatus.PAYMENT_FAILED)
    _, events = run_stripe_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=failed.to_slots())
    )
    order = Order.from_slots({**failed.to_slots(), **slot_updates(events)})
    assert order is not None
    old = str(first.checkout_session_id)
    stripe_env.complete_late(old)  # paid on the old page just as it was expired
    pi = stripe_env.sessions[old]["payment_intent"]
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, old))
    assert slot_updates(events)["order_paid_session"] == old
    assert slot_updates(events)["order_payment_intent"] == pi
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert stripe_env.sessions[str(order.checkout_session_id)]["status"] == "expired"


def test_a_second_payment_that_cannot_be_refunded_now_is_told_and_logged(
    stripe_env: StripeEmulator, catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    paid, second_id = paid_twice(stripe_env, catalog)
    duplicate = stripe_env.sessions[second_id]["payment_intent"]

    async def refund_by_hand() -> None:
        await stripe_client().v1.refunds.create_async(params={"payment_intent": duplicate})

    run(refund_by_hand())  # Stripe now refuses another refund of it
    messages, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(paid, second_id))
    assert events == []
    assert f"You were charged twice for order {paid.id}" in messages[0]["text"]
    assert "refund the second payment shortly" in messages[0]["text"]
    assert "duplicate payment not refunded, refund it by hand: event=evt_test_second" in caplog.text
