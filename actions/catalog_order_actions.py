"""The customer's cart from the shop's Meta catalog becomes an order (WhatsApp `order`
message → the connector's `EXTERNAL_catalog_order` intent, one `catalog_item` per line).

The order is priced from data/catalog.yml and then handled exactly like a typed one: the
summary with buttons to pay, change or decline, and one Checkout Session with a line item
per line once confirmed (data/rules.yml).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import save_order
from actions.draft_order import destination_for, show_draft
from actions.order_actions import open_order_in_the_way
from actions.orders import basket
from actions.orders.basket import BasketError
from actions.orders.cart import CartItem, read_cart
from actions.settings import action_settings
from shop_contract.catalog import default_catalog
from shop_contract.entities import CATALOG_ID, CATALOG_ITEM

NO_CARTS = (
    "Sorry, I can't take carts from a catalog here. Tell me what you'd like instead, "
    'e.g. "2 espresso and 1 green tea".'
)
CART_INTRO = "Here's your cart as an order, at our current prices."


class ActionCatalogOrder(Action):
    """Turns the cart into a draft order and shows its summary; a cart that cannot be taken
    as it is (another catalog, an item we do not sell, a quantity over the limit, too many
    lines) gets a reply saying why, and no order."""

    def name(self) -> str:
        return "action_catalog_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        done: list[EventType] = [SlotSet("product", None)]
        our_catalog = action_settings().catalog_id
        if our_catalog is None:
            dispatcher.utter_message(text=NO_CARTS)
            return done
        catalog = default_catalog()
        if open_order_in_the_way(dispatcher, tracker, catalog):
            return done
        cart_catalog = next(tracker.get_latest_entity_values(CATALOG_ID), "")
        items = [CartItem.from_entity(v) for v in tracker.get_latest_entity_values(CATALOG_ITEM)]
        try:
            reading = read_cart(catalog, our_catalog, str(cart_catalog), items)
            order = basket.started(catalog, reading.wanted, destination_for(tracker, None))
        except BasketError as refused:
            dispatcher.utter_message(text=str(refused))
            return done
        show_draft(dispatcher, order, "\n".join([CART_INTRO, *reading.price_notes]))
        return [*save_order(tracker, order), *done]
