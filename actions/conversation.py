"""Reading and writing the current order in a conversation's slots."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.orders import (
    PAST_ORDERS_SLOT,
    Order,
    cleared_order_slots,
    with_past_order,
)


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest message, read from `intent.name`.

    `Tracker.get_intent_of_latest_message` reads `intent_ranking`, which external events
    (the connector's reserved intents) do not carry.
    """
    intent = (tracker.latest_message or {}).get("intent") or {}
    name = intent.get("name")
    return name if isinstance(name, str) else None


def current_order(tracker: Tracker) -> Order | None:
    """The order held in the tracker's slots, or None."""
    return Order.from_slots(tracker.current_slot_values())


def save_order(order: Order) -> list[EventType]:
    """Events that make `order` the current order."""
    return [SlotSet(name, value) for name, value in order.to_slots().items()]


def archive_order(tracker: Tracker, order: Order, keep_current: bool) -> list[EventType]:
    """Events that record `order` in past orders; the current order is kept or cleared.

    A paid order stays current (so "where is my order?" still finds it); a cancelled one is
    cleared so the next order starts from nothing.
    """
    past: Any = tracker.get_slot(PAST_ORDERS_SLOT)
    events = [SlotSet(PAST_ORDERS_SLOT, with_past_order(past, order))]
    if keep_current:
        events += save_order(order)
    else:
        events += [SlotSet(name, value) for name, value in cleared_order_slots().items()]
    return events
