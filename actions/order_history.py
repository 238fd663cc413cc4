""" "my orders": the customer's recent orders, newest first, each with its state and total."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import known_orders
from actions.order_actions import status_text
from actions.orders.money import format_amount

MAX_LISTED = 5  # a chat message, not a statement: the rest are counted


class ActionListOrders(Action):
    def name(self) -> str:
        return "action_list_orders"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        latest_first = list(reversed(known_orders(tracker).values()))
        if not latest_first:
            dispatcher.utter_message(
                text='You don\'t have any orders with us yet. Say "catalog" to see what we sell.'
            )
            return []
        rows = [
            f"• {order.id}: {status_text(order)}, {format_amount(order.total, order.currency)}"
            for order in latest_first[:MAX_LISTED]
        ]
        older = len(latest_first) - MAX_LISTED
        if older > 0:
            rows.append(f"…and {older} older order{'s' if older > 1 else ''}.")
        heading = "Your orders, latest first:" if len(latest_first) > 1 else "Your order:"
        dispatcher.utter_message(
            text="\n".join([heading, *rows]),
            buttons=[{"title": "Latest order", "payload": "/check_order_status"}],
        )
        return []
