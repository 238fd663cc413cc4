"""Fulfilment by the shop: the forward-only moves (shop_contract/fulfilment.py), the order's
side of them, and what the customer is told (actions/fulfilment_actions.py, "where is my
order?", "my orders")."""

from __future__ import annotations

import pytest

from actions.fulfilment_actions import ActionOrderDelivered, ActionOrderShipped
from actions.order_actions import ActionOrderStatus
from actions.order_history import ActionListOrders
from actions.orders.model import Order
from actions.orders.records import ORDER_SLOTS, ORDERS_SLOT
from actions.orders.states import PAID_STATES, InvalidOrderMove, OrderStatus
from shop_contract import fulfilment
from shop_contract.catalog import Catalog
from shop_contract.fulfilment import (
    FULFILMENT_MOVES,
    Fulfilment,
    can_fulfil,
    checked_carrier,
    checked_tracking_url,
)
from tests.conftest import make_tracker, run_action, slot_updates

TRACKING = "https://track.example/parcel/1Z999"


def paid_order(catalog: Catalog) -> Order:
    order = Order.start(catalog, {"espresso-beans": 2}).with_link("cs_1", "https://pay/1")
    return order.paid_by("cs_1", "pi_1")


def test_every_move_not_in_the_table_is_refused() -> None:
    allowed = {
        (Fulfilment.UNFULFILLED, Fulfilment.SHIPPED),
        (Fulfilment.UNFULFILLED, Fulfilment.DELIVERED),
        (Fulfilment.SHIPPED, Fulfilment.SHIPPED),  # a corrected carrier or tracking link
        (Fulfilment.SHIPPED, Fulfilment.DELIVERED),
    }
    for current in Fulfilment:
        for wanted in Fulfilment:
            assert can_fulfil(current, wanted) == ((current, wanted) in allowed)
    assert FULFILMENT_MOVES[Fulfilment.DELIVERED] == frozenset()
    assert not any(Fulfilment.UNFULFILLED in moves for moves in FULFILMENT_MOVES.values())


def test_only_a_paid_order_moves_forward(catalog: Catalog) -> None:
    draft = Order.start(catalog, {"espresso-beans": 1})
    with pytest.raises(InvalidOrderMove, match="cannot be marked shipped"):
        draft.fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    shipped = paid_order(catalog).fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    assert (shipped.fulfilment, shipped.carrier, shipped.tracking_url) == (
        Fulfilment.SHIPPED,
        "DHL",
        TRACKING,
    )
    delivered = shipped.fulfilled(Fulfilment.DELIVERED)
    assert delivered.carrier == "DHL"  # kept for "where is my order?"
    for late in Fulfilment:
        with pytest.raises(InvalidOrderMove):
            delivered.fulfilled(late, "DHL", TRACKING)
    assert Order.from_slots(delivered.to_slots()) == delivered


@pytest.mark.parametrize(
    "url",
    [
        "http://track.example/1",
        "track.example/1",
        "https://",
        "https://a b/",
        "",
        None,
        42,
        "https://track.example/\n1",
        "javascript:alert(1)",
        "https://x/" + "a" * 600,
    ],
)
def test_tracking_links_are_https_addresses(url: object) -> None:
    with pytest.raises(ValueError, match="tracking URL"):
        checked_tracking_url(url)


@pytest.mark.parametrize("carrier", ["", "   ", None, "x" * 65, "DHL\nclick here"])
def test_carriers_are_one_short_line(carrier: object) -> None:
    with pytest.raises(ValueError, match="carrier"):
        checked_carrier(carrier)
    assert checked_carrier("  DHL Express ") == "DHL Express"


def test_shipped_tells_carrier_and_link_and_records_them(catalog: Catalog) -> None:
    order = paid_order(catalog)
    tracker = make_tracker(
        "EXTERNAL_order_shipped",
        {"order_id": order.id, "carrier": "DHL", "tracking_url": TRACKING},
        slots=order.to_slots(),
    )
    messages, events = run_action(ActionOrderShipped(), tracker)
    (message,) = messages
    assert f"order {order.id} is on its way with DHL" in message["text"]
    assert TRACKING in message["text"]
    slots = slot_updates(events)
    assert (slots["order_fulfilment"], slots["order_carrier"], slots["order_tracking_url"]) == (
        "shipped",
        "DHL",
        TRACKING,
    )


def test_shipped_is_silent_for_an_unknown_order_a_bad_link_or_a_delivered_one(
    catalog: Catalog,
) -> None:
    order = paid_order(catalog)
    delivered = order.fulfilled(Fulfilment.DELIVERED)
    for slots, entities in (
        (
            order.to_slots(),
            {"order_id": "ORD-NOTOURS1", "carrier": "DHL", "tracking_url": TRACKING},
        ),
        (order.to_slots(), {"order_id": order.id, "carrier": "DHL", "tracking_url": "http://x/1"}),
        (delivered.to_slots(), {"order_id": order.id, "carrier": "DHL", "tracking_url": TRACKING}),
    ):
        tracker = make_tracker("EXTERNAL_order_shipped", entities, slots=slots)
        assert run_action(ActionOrderShipped(), tracker) == ([], [])


def test_delivered_is_said_once(catalog: Catalog) -> None:
    shipped = paid_order(catalog).fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    tracker = make_tracker(
        "EXTERNAL_order_delivered", {"order_id": shipped.id}, slots=shipped.to_slots()
    )
    messages, events = run_action(ActionOrderDelivered(), tracker)
    assert f"Order {shipped.id} has been delivered" in messages[0]["text"]
    assert slot_updates(events)["order_fulfilment"] == "delivered"
    again = make_tracker(
        "EXTERNAL_order_delivered",
        {"order_id": shipped.id},
        slots=shipped.fulfilled(Fulfilment.DELIVERED).to_slots(),
    )
    assert run_action(ActionOrderDelivered(), again) == ([], [])


def test_where_is_my_order_and_my_orders_show_the_shipment(catalog: Catalog) -> None:
    shipped = paid_order(catalog).fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    messages, _ = run_action(
        ActionOrderStatus(), make_tracker("check_order_status", slots=shipped.to_slots())
    )
    assert f"shipped with DHL, track it at {TRACKING}" in messages[0]["text"]
    slots = {**shipped.to_slots(), "orders": {shipped.id: shipped.to_slots()}}
    messages, _ = run_action(ActionListOrders(), make_tracker("list_orders", slots=slots))
    assert f"{shipped.id}: shipped with DHL" in messages[0]["text"]
    refunded = shipped.with_refunds(shipped.total, shipped.total)
    assert refunded.status == OrderStatus.REFUNDED
    messages, _ = run_action(
        ActionOrderStatus(), make_tracker("check_order_status", slots=refunded.to_slots())
    )
    assert "refunded" in messages[0]["text"] and "track" not in messages[0]["text"]


def test_the_connector_reads_the_order_slots_the_actions_write() -> None:
    """What connectors/stripe/paid_index.py reads to see a payment confirmed."""
    assert fulfilment.ORDERS_SLOT == ORDERS_SLOT
    assert {fulfilment.PAID_SESSION_SLOT, fulfilment.ORDER_STATUS_SLOT} <= set(ORDER_SLOTS)
    assert set(fulfilment.CONFIRMED_STATUSES) == {status.value for status in PAID_STATES}


def test_a_partial_refund_is_said_beside_the_shipping_news(catalog: Catalog) -> None:
    order = Order.start(catalog, {"espresso-beans": 2}).with_link("cs_1", "https://pay/1")
    order = order.paid_by("cs_1", "pi_1").fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    part = order.with_refunds(500, order.total)
    messages, _ = run_action(
        ActionOrderStatus(), make_tracker("check_order_status", slots=part.to_slots())
    )
    assert messages[0]["text"].startswith(
        f"Order {part.id}: shipped with DHL, track it at {TRACKING}; €5.00 refunded so far.\n"
    )
    slots = {**part.to_slots(), "orders": {part.id: part.to_slots()}}
    messages, _ = run_action(ActionListOrders(), make_tracker("list_orders", slots=slots))
    assert f"track it at {TRACKING}; €5.00 refunded so far, " in messages[0]["text"]
    delivered = part.fulfilled(Fulfilment.DELIVERED)
    messages, _ = run_action(ActionListOrders(), make_tracker("list_orders", slots={
        **delivered.to_slots(), "orders": {part.id: delivered.to_slots()}}))  # fmt: skip
    assert "delivered; €5.00 refunded so far, " in messages[0]["text"]
