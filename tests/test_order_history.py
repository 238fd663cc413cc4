"""'my orders': every order of the customer, the one that changed last first, with its state
and total."""

from __future__ import annotations

from typing import Any

from actions.order_history import MAX_LISTED, ActionListOrders
from actions.orders.model import Order
from actions.orders.records import with_order
from actions.orders.states import OrderStatus
from shop_contract.catalog import Catalog
from tests.conftest import make_tracker, run_action


def test_no_orders_yet_says_how_to_start() -> None:
    messages, events = run_action(ActionListOrders(), make_tracker("list_orders"))
    assert "don't have any orders" in messages[0]["text"] and events == []


def test_orders_are_listed_newest_first_the_current_one_on_top(catalog: Catalog) -> None:
    paid = Order.start(catalog, {"gift-card": 1}).paid_by("cs_1", "pi_1")
    cancelled = Order.start(catalog, {"espresso-beans": 2}).moved_to(OrderStatus.CANCELLED)
    current = Order.start(catalog, {"green-tea": 1})
    slots: dict[str, Any] = {"orders": with_order(with_order(None, paid), cancelled)}
    tracker = make_tracker("list_orders", slots={**slots, **current.to_slots()})
    messages, _ = run_action(ActionListOrders(), tracker)
    text = messages[0]["text"]
    lines = text.splitlines()
    assert lines[0] == "Your orders, latest first:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        f"• {current.id}",
        f"• {cancelled.id}",
        f"• {paid.id}",
    ]
    assert f"• {paid.id}: paid — we're preparing it, €25.00" in lines
    assert f"• {cancelled.id}: cancelled, €25.80" in lines
    assert messages[0]["buttons"] == [{"title": "Latest order", "payload": "/check_order_status"}]


def test_only_the_newest_are_listed_the_rest_counted(catalog: Catalog) -> None:
    orders: dict[str, Any] | None = None
    for _ in range(MAX_LISTED + 2):
        orders = with_order(orders, Order.start(catalog, {"gift-card": 1}))
    messages, _ = run_action(
        ActionListOrders(), make_tracker("list_orders", slots={"orders": orders})
    )
    lines = messages[0]["text"].splitlines()
    assert len(lines) == 1 + MAX_LISTED + 1 and lines[-1] == "…and 2 older orders."
