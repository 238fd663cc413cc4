from __future__ import annotations

from actions.order_actions import (
    ActionAskCancelOrder,
    ActionCancelOrder,
    ActionOrderStatus,
    ActionShowCatalog,
    ActionStartOrder,
)
from actions.orders.model import Order
from actions.orders.records import with_order
from actions.orders.states import OrderStatus
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, run_action, slot_updates


def test_catalog_lists_every_product_with_an_order_button(catalog: Catalog) -> None:
    messages, events = run_action(ActionShowCatalog(), make_tracker("browse_catalog"))
    (message,) = messages
    for product in catalog:
        assert product.name in message["text"]
    assert [b["payload"] for b in message["buttons"]] == [
        f'/order{{"product": "{p.id}"}}' for p in catalog
    ]
    assert "€14.90 / month" in message["text"]
    assert events == []


def test_start_order_with_a_product_makes_a_draft_and_asks_to_confirm() -> None:
    tracker = make_tracker("order", {"product": "espresso-beans"})
    messages, events = run_action(ActionStartOrder(), tracker)
    slots = slot_updates(events)
    assert slots["order_status"] == "draft"
    assert slots["order_items"] == [
        {"product": "espresso-beans", "quantity": 1, "unit_amount": 1290}
    ]
    assert (slots["order_total"], slots["order_shipping"]) == (1290 + 490, 490)
    assert slots["order_destination"] == "Germany"  # the first destination in data/shop.yml
    assert slots["product"] is None
    (message,) = messages
    assert slots["order_id"] in message["text"]
    assert (
        "1 × Espresso Beans — €12.90\nDelivery to Germany — €4.90\nTotal: €17.80"
        in (message["text"])
    )
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/change_order", "/deny"]


def test_start_order_understands_a_product_name_in_the_slot() -> None:
    tracker = make_tracker("order", slots={"product": "Sencha"})
    _, events = run_action(ActionStartOrder(), tracker)
    assert slot_updates(events)["order_items"][0]["product"] == "green-tea"


def test_start_order_without_a_product_asks_which(catalog: Catalog) -> None:
    messages, events = run_action(ActionStartOrder(), make_tracker("order"))
    assert messages[0]["text"] == "Which product would you like?"
    assert len(messages[0]["buttons"]) == len(catalog)
    assert "order_id" not in slot_updates(events)


def test_start_order_keeps_an_order_that_awaits_payment(catalog: Catalog) -> None:
    pending = Order.start(catalog, {"gift-card": 1}).moved_to(
        OrderStatus.AWAITING_PAYMENT, checkout_session_id="cs_1", payment_link="https://pay"
    )
    tracker = make_tracker("order", {"product": "decaf-beans"}, slots=pending.to_slots())
    messages, events = run_action(ActionStartOrder(), tracker)
    assert pending.id in messages[0]["text"]
    assert "order_id" not in slot_updates(events)


def test_status_without_any_order() -> None:
    messages, _ = run_action(ActionOrderStatus(), make_tracker("check_order_status"))
    assert "don't have any orders" in messages[0]["text"]


def test_status_of_the_current_order_includes_the_link(catalog: Catalog) -> None:
    pending = Order.start(catalog, {"gift-card": 2}).moved_to(
        OrderStatus.AWAITING_PAYMENT, checkout_session_id="cs_1", payment_link="https://pay/cs_1"
    )
    tracker = make_tracker("check_order_status", slots=pending.to_slots())
    messages, _ = run_action(ActionOrderStatus(), tracker)
    text = messages[0]["text"]
    assert f"Order {pending.id}: waiting for your payment" in text
    assert "Total: €50.00" in text and "https://pay/cs_1" in text


def test_status_after_the_last_order_was_cancelled(catalog: Catalog) -> None:
    cancelled = Order.start(catalog, {"gift-card": 1}).moved_to(OrderStatus.CANCELLED)
    tracker = make_tracker("check_order_status", slots={"orders": with_order(None, cancelled)})
    messages, _ = run_action(ActionOrderStatus(), tracker)
    assert f"{cancelled.id}, was cancelled" in messages[0]["text"]


def test_status_of_a_partly_refunded_order_says_how_much(catalog: Catalog) -> None:
    part = Order.start(catalog, {"gift-card": 1}).paid_by("cs_1", "pi_1").with_refunds(100, 2500)
    tracker = make_tracker("check_order_status", slots=part.to_slots())
    messages, _ = run_action(ActionOrderStatus(), tracker)
    assert f"Order {part.id}: partly refunded (€1.00 so far)." in messages[0]["text"]


def test_cancel_asks_first_and_then_archives_the_order(catalog: Catalog) -> None:
    draft = Order.start(catalog, {"filter-coffee": 3})
    tracker = make_tracker("cancel_order", slots=draft.to_slots())
    messages, events = run_action(ActionAskCancelOrder(), tracker)
    assert draft.id in messages[0]["text"] and events == []

    messages, events = run_action(
        ActionCancelOrder(), make_tracker("affirm", slots=draft.to_slots())
    )
    slots = slot_updates(events)
    assert slots["order_id"] is None
    assert slots["orders"][draft.id]["order_status"] == "cancelled"
    assert "cancelled" in messages[0]["text"]


def test_nothing_to_cancel(catalog: Catalog) -> None:
    for slots in ({}, Order.start(catalog, {"gift-card": 1}).moved_to(OrderStatus.PAID).to_slots()):
        messages, events = run_action(
            ActionAskCancelOrder(), make_tracker("cancel_order", slots=slots)
        )
        assert "no open order" in messages[0]["text"] and events == []
        messages, events = run_action(ActionCancelOrder(), make_tracker("affirm", slots=slots))
        assert "no open order" in messages[0]["text"] and events == []
