"""Payment follow-ups without Stripe configured (Stripe itself: tests/test_payments.py)."""

from __future__ import annotations

from typing import Any

import pytest

from actions.catalog import Catalog
from actions.orders import Order, OrderStatus
from actions.payment_actions import (
    ActionCheckoutExpired,
    ActionCreatePaymentLink,
    ActionPaymentFailed,
    ActionPaymentProcessing,
    ActionPaymentSucceeded,
    ActionRefunded,
    ActionSubscriptionEvent,
)
from tests.conftest import make_tracker, run_action, slot_updates

pytestmark = pytest.mark.usefixtures("no_stripe")


def awaiting(catalog: Catalog, **items: int) -> Order:
    return Order.start(catalog, items or {"espresso-beans": 2}).moved_to(
        OrderStatus.AWAITING_PAYMENT, checkout_session_id="cs_test_1", payment_link="https://pay/1"
    )


def event(intent: str, order: Order, **entities: Any) -> Any:
    return make_tracker(
        intent,
        {"order_id": order.id, "checkout_session_id": order.checkout_session_id, **entities},
        slots=order.to_slots(),
    )


def test_payment_link_without_stripe_says_so_and_keeps_the_draft(catalog: Catalog) -> None:
    draft = Order.start(catalog, {"gift-card": 1})
    messages, events = run_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=draft.to_slots())
    )
    assert "isn't set up" in messages[0]["text"]
    assert messages[0]["buttons"] == [{"title": "Try again", "payload": "/affirm"}]
    assert slot_updates(events)["order_status"] == "draft"


def test_payment_link_is_resent_while_awaiting_payment(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionCreatePaymentLink(), make_tracker("affirm", slots=order.to_slots())
    )
    assert "https://pay/1" in messages[0]["text"] and events == []


def test_payment_link_is_sent_as_a_cta_button_on_whatsapp(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = make_tracker("affirm", slots=order.to_slots(), channel="whatsapp")
    messages, _ = run_action(ActionCreatePaymentLink(), tracker)
    interactive = messages[0]["custom"]["interactive"]
    assert interactive["type"] == "cta_url"
    assert interactive["action"]["parameters"] == {
        "display_text": "Pay now",
        "url": "https://pay/1",
    }
    assert messages[0]["text"] is None


def test_no_open_order_to_pay() -> None:
    messages, events = run_action(ActionCreatePaymentLink(), make_tracker("affirm"))
    assert "no open order" in messages[0]["text"] and events == []


def test_payment_succeeded_confirms_once(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = event("EXTERNAL_payment_succeeded", order, amount_total=2580, currency="eur")
    messages, events = run_action(ActionPaymentSucceeded(), tracker)
    slots = slot_updates(events)
    assert slots["order_status"] == "paid"
    assert slots["past_orders"][-1]["status"] == "paid"
    assert f"Order {order.id} is confirmed" in messages[0]["text"]
    assert "Total: €25.80" in messages[0]["text"]

    paid = Order.from_slots({**order.to_slots(), **slots})
    assert paid is not None
    again = event("EXTERNAL_payment_succeeded", paid, amount_total=2580, currency="eur")
    assert run_action(ActionPaymentSucceeded(), again) == ([], [])


@pytest.mark.parametrize(
    "entities",
    [{"amount_total": 100, "currency": "eur"}, {"amount_total": 2580, "currency": "usd"}],
)
def test_payment_with_a_wrong_amount_or_currency_is_not_confirmed(
    catalog: Catalog, entities: dict[str, Any]
) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionPaymentSucceeded(), event("EXTERNAL_payment_succeeded", order, **entities)
    )
    assert events == []
    assert "checking it" in messages[0]["text"]


def test_payment_for_another_order_is_ignored(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = make_tracker(
        "EXTERNAL_payment_succeeded", {"order_id": "ORD-OTHER"}, slots=order.to_slots()
    )
    assert run_action(ActionPaymentSucceeded(), tracker) == ([], [])


def test_payment_processing_tells_the_customer(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionPaymentProcessing(), event("EXTERNAL_payment_processing", order)
    )
    assert "being processed" in messages[0]["text"] and events == []


def test_payment_failed_offers_a_new_link(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(ActionPaymentFailed(), event("EXTERNAL_payment_failed", order))
    assert slot_updates(events)["order_status"] == "payment_failed"
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/affirm", "/deny"]


def test_late_failure_or_expiry_never_undoes_a_payment(catalog: Catalog) -> None:
    paid = awaiting(catalog).moved_to(OrderStatus.PAID)
    assert run_action(ActionPaymentFailed(), event("EXTERNAL_payment_failed", paid)) == ([], [])
    assert run_action(ActionCheckoutExpired(), event("EXTERNAL_checkout_expired", paid)) == ([], [])


def test_expiry_of_an_old_link_is_ignored(catalog: Catalog) -> None:
    order = awaiting(catalog)
    tracker = event("EXTERNAL_checkout_expired", order, checkout_session_id="cs_test_old")
    assert run_action(ActionCheckoutExpired(), tracker) == ([], [])


def test_expired_link_marks_the_order_and_tries_a_fresh_one(catalog: Catalog) -> None:
    order = awaiting(catalog)
    messages, events = run_action(
        ActionCheckoutExpired(), event("EXTERNAL_checkout_expired", order)
    )
    assert slot_updates(events)["order_status"] == "expired"
    assert "isn't set up" in messages[0]["text"]  # no Stripe here: the retry is offered


def test_refund_is_announced_and_recorded(catalog: Catalog) -> None:
    paid = awaiting(catalog).moved_to(OrderStatus.PAID)
    messages, events = run_action(ActionRefunded(), event("EXTERNAL_refunded", paid))
    assert slot_updates(events)["order_status"] == "refunded"
    assert "refunded €25.80" in messages[0]["text"]
    assert run_action(ActionRefunded(), event("EXTERNAL_refunded", awaiting(catalog))) == ([], [])


@pytest.mark.parametrize(
    ("intent", "words"),
    [
        ("EXTERNAL_subscription_renewed", "renewed"),
        ("EXTERNAL_subscription_renewal_failed", "couldn't take"),
        ("EXTERNAL_subscription_updated", "updated"),
        ("EXTERNAL_subscription_cancelled", "cancelled"),
    ],
)
def test_subscription_events_get_one_message_each(intent: str, words: str) -> None:
    messages, events = run_action(ActionSubscriptionEvent(), make_tracker(intent))
    assert len(messages) == 1 and words in messages[0]["text"] and events == []
