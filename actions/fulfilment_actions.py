"""The shop shipped or delivered a paid order: the customer is told, once.

The connector triggers `EXTERNAL_order_shipped` / `EXTERNAL_order_delivered` after it has
checked the operator's request against its index of paid orders (connectors/orders/). Here
the order is moved in the conversation's slots by the same forward-only table
(shop_contract/fulfilment.py) and the message said; the connector keys the turn's messages
in the outbox by order, step and tracking link, so a repeated request or a replayed turn
sends nothing twice, and outside the 24-hour window it goes as the Utility template like
every order notification. An order the conversation does not hold, or a move the table
refuses (a late or repeated "delivered"), is silent.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity, event_order, save_event_order
from actions.orders.model import Order
from actions.orders.states import InvalidOrderMove
from shop_contract.entities import CARRIER, TRACKING_URL
from shop_contract.fulfilment import Fulfilment, checked_carrier, checked_tracking_url

logger = logging.getLogger(__name__)


def moved(tracker: Tracker, state: Fulfilment, **details: str) -> Order | None:
    """The event's order marked `state`, or None (logged) when it cannot be."""
    order = event_order(tracker)
    try:
        if order is None:
            raise InvalidOrderMove("unknown order")
        return order.fulfilled(state, **details)
    except InvalidOrderMove as refused:
        logger.info("fulfilment not told: order=%s reason=%s", order and order.id, refused)
        return None


class ActionOrderShipped(Action):
    def name(self) -> str:
        return "action_order_shipped"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            carrier = checked_carrier(entity(tracker, CARRIER))
            link = checked_tracking_url(entity(tracker, TRACKING_URL))
        except ValueError as bad:
            logger.warning("shipment without a usable carrier or link ignored: %s", bad)
            return []
        shipped = moved(tracker, Fulfilment.SHIPPED, carrier=carrier, tracking_url=link)
        if shipped is None:
            return []
        dispatcher.utter_message(
            text=f"Good news: order {shipped.id} is on its way with {carrier}.\n"
            f"Track it here: {link}"
        )
        return save_event_order(tracker, shipped)


class ActionOrderDelivered(Action):
    def name(self) -> str:
        return "action_order_delivered"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        delivered = moved(tracker, Fulfilment.DELIVERED)
        if delivered is None:
            return []
        dispatcher.utter_message(
            text=f"Order {delivered.id} has been delivered. Enjoy! If anything is wrong "
            "with it, just write to us here."
        )
        return save_event_order(tracker, delivered)
