"""The WhatsApp Flow in the conversation: next screens, and the order when it completes.

The connector turns Flow traffic into reserved intents with entities `flow_screen`,
`flow_data` and `flow_token`. Screen replies go back as a custom message under
FLOW_RESPONSE_KEY, which the connector encrypts and returns to WhatsApp. A completed Flow
(`flow_completed`, from the endpoint's final screen or from `nfm_reply`, in any order, or
twice) creates at most one order per flow token.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import after, known_orders, latest_intent
from actions.flow_screens import (
    back_screen,
    next_screen,
    parse_order,
    product_screen,
)
from actions.payment_link_actions import (
    link_waits_for_old_order,
    send_new_payment_link,
    stop_other_links,
)
from shop_contract.catalog import default_catalog
from shop_contract.custom_messages import FLOW_RESPONSE_KEY
from shop_contract.entities import FLOW_DATA, FLOW_SCREEN, FLOW_TOKEN
from shop_contract.intents import FLOW_BACK, FLOW_COMPLETED, FLOW_DATA_EXCHANGE, FLOW_INIT

logger = logging.getLogger(__name__)


def flow_data(tracker: Tracker) -> Mapping[str, Any]:
    value = next(tracker.get_latest_entity_values(FLOW_DATA), None)
    return value if isinstance(value, dict) else {}


def token_already_ordered(tracker: Tracker, flow_token: str) -> bool:
    """True when this Flow already produced an order (current or not)."""
    return any(order.flow_token == flow_token for order in known_orders(tracker).values())


class ActionFlowStep(Action):
    """Answers Flow screens, handles Flow errors and turns a completed Flow into an order."""

    def name(self) -> str:
        return "action_flow_step"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = latest_intent(tracker)
        catalog = default_catalog()
        screen_name = next(tracker.get_latest_entity_values(FLOW_SCREEN), None)
        data = flow_data(tracker)
        token = str(
            next(tracker.get_latest_entity_values(FLOW_TOKEN), None) or data.get("flow_ref") or ""
        )
        if intent == FLOW_INIT:
            reply = product_screen(catalog)
        elif intent == FLOW_BACK:
            reply = back_screen(catalog, screen_name, data)
        elif intent == FLOW_DATA_EXCHANGE:
            reply = next_screen(catalog, screen_name, data, token)
        elif intent == FLOW_COMPLETED:
            return await self.place_order(dispatcher, tracker, token, data)
        else:
            logger.warning("flow error reported by WhatsApp: screen=%s", screen_name)
            dispatcher.utter_message(
                text="Sorry, the order form ran into a problem. Shall we try again?",
                buttons=[{"title": "Order again", "payload": "/order"}],
            )
            return []
        dispatcher.utter_message(json_message={FLOW_RESPONSE_KEY: reply})
        return []

    async def place_order(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        token: str,
        data: Mapping[str, Any],
    ) -> list[EventType]:
        if token and token_already_ordered(tracker, token):
            logger.info("flow completion repeated, no second order")
            return []
        catalog = default_catalog()
        try:
            order = parse_order(catalog, data).draft(catalog, flow_token=token or None)
        except ValueError as error:  # FlowDataError, or a limit Order.start enforces
            dispatcher.utter_message(text=f"Sorry, I couldn't take that order: {error}")
            return []
        others = await stop_other_links(dispatcher, tracker, None)
        if others.blocked in ("paid", "processing"):
            return others.events
        later = after(tracker, others.events)
        if others.blocked_by is not None:
            return others.events + link_waits_for_old_order(
                dispatcher, later, order, others.blocked_by
            )
        return others.events + await send_new_payment_link(
            dispatcher, later, order, f"Thanks! Your order {order.id}:"
        )
