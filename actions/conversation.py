"""Reading and writing a conversation's orders: the current one and every other one held,
and the order a Stripe event names."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.orders.model import Order
from actions.orders.records import (
    LEGACY_PAST_ORDERS_SLOT,
    ORDERS_SLOT,
    cleared_order_slots,
    orders_in,
    with_order,
)
from actions.orders.states import OrderStatus
from shop_contract.entities import ORDER_ID


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest message, read from `intent.name`.

    `Tracker.get_intent_of_latest_message` reads `intent_ranking`, which external events
    (the connector's reserved intents) do not carry.
    """
    intent = (tracker.latest_message or {}).get("intent") or {}
    name = intent.get("name")
    return name if isinstance(name, str) else None


def current_order(tracker: Tracker) -> Order | None:
    """The order held in the tracker's `order_*` slots (the one being discussed), or None."""
    return Order.from_slots(tracker.current_slot_values())


def known_orders(tracker: Tracker) -> dict[str, Order]:
    """Every order the conversation holds, by id, oldest first; the current one last."""
    legacy = tracker.get_slot(LEGACY_PAST_ORDERS_SLOT)
    orders = {
        str(record["order_id"]): Order.from_legacy_record(record)
        for record in (legacy if isinstance(legacy, list) else [])
        if isinstance(record, dict) and record.get("order_id")
    }
    orders.update(orders_in(tracker.get_slot(ORDERS_SLOT)))
    current = current_order(tracker)
    if current is not None:
        orders.pop(current.id, None)
        orders[current.id] = current
    return orders


def find_order(tracker: Tracker, order_id: str) -> Order | None:
    """The customer's order with this id, current or not, or None."""
    return known_orders(tracker).get(order_id)


def save_order(tracker: Tracker, order: Order, current: bool = True) -> list[EventType]:
    """Events that record `order` among the customer's orders and, when `current`, make it
    the order being discussed. A draft left behind (never given a link) is not kept."""
    records: dict[str, Any] = {}
    for held in known_orders(tracker).values():
        if held.status != OrderStatus.DRAFT:
            records = with_order(records, held)
    events: list[EventType] = [SlotSet(ORDERS_SLOT, with_order(records, order))]
    if tracker.get_slot(LEGACY_PAST_ORDERS_SLOT) is not None:
        events.append(SlotSet(LEGACY_PAST_ORDERS_SLOT, None))  # its records are in `orders` now
    if current:
        events += [SlotSet(name, value) for name, value in order.to_slots().items()]
    return events


def archive_order(tracker: Tracker, order: Order) -> list[EventType]:
    """Events that record `order` and clear the current order (the next starts from nothing).
    The order stays tracked, so a late payment for it is still confirmed."""
    clear = [SlotSet(name, value) for name, value in cleared_order_slots().items()]
    return save_order(tracker, order, current=False) + clear


def after(tracker: Tracker, events: list[EventType]) -> Tracker:
    """A copy of `tracker` with the slots `events` set: for a turn that records one order and
    then another (the second record must include the first)."""
    later = tracker.copy()
    later.slots.update({e["name"]: e["value"] for e in events if e.get("event") == "slot"})
    return later


def entity(tracker: Tracker, name: str) -> Any | None:
    """The value of entity `name` in the latest (external) message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def event_order(tracker: Tracker) -> Order | None:
    """The customer's order the event names (current or not), else None; the current order
    for an event that names none."""
    order_id = entity(tracker, ORDER_ID)
    if order_id is None:
        return current_order(tracker)
    return find_order(tracker, str(order_id))


def save_event_order(tracker: Tracker, order: Order) -> list[EventType]:
    """Records the order an event changed. It becomes the order being discussed, unless
    another order is still open (the customer may be about to pay that one)."""
    current = current_order(tracker)
    other_open = current is not None and current.id != order.id and current.is_open
    return save_order(tracker, order, current=not other_open)
