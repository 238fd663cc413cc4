"""What a typed order message asks for, where the order ships, and the draft's summary.

Shared by starting an order (actions/order_actions.py) and changing a draft
(actions/cart_actions.py): the summary always shows what was understood — every line, its
quantity and amount, delivery and the total — with buttons to pay, change or decline.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.orders.basket import BasketError
from actions.orders.model import Order
from actions.orders.text_order import Request, read_request
from shop_contract.catalog import Catalog, default_catalog
from shop_contract.delivery import Destination
from shop_contract.shop import default_shop

PAY_BUTTON = {"title": "Yes, pay now", "payload": "/affirm"}
CHANGE_BUTTON = {"title": "Change order", "payload": "/change_order"}
DECLINE_BUTTON = {"title": "No", "payload": "/deny"}
HOW_TO_CHANGE = (
    'To change it, tell me e.g. "add 2 decaf", "remove the tea", "make the espresso 3" '
    'or "deliver to Austria".'
)


def requested(tracker: Tracker, catalog: Catalog) -> Request:
    """The products (with quantities) and any lone quantity in the latest message."""
    message = tracker.latest_message or {}

    def product_id(value: str) -> str | None:
        product = catalog.get(value) or catalog.find(value)
        return product.id if product else None

    return read_request(str(message.get("text") or ""), message.get("entities") or [], product_id)


def destination_for(tracker: Tracker, order: Order | None) -> Destination:
    """Where the order ships: the country the latest message names, else the order's, else
    the shop's first destination. BasketError for a country the shop does not deliver to."""
    shop = default_shop()
    named = next(tracker.get_latest_entity_values("country"), None)
    if isinstance(named, str):
        found = shop.destination(named)
        if found is None:
            places = ", ".join(d.name for d in shop.destinations)
            raise BasketError(f"Sorry, we don't deliver to {named}. We deliver to {places}.")
        return found
    if order is not None and order.destination:
        return shop.destination(order.destination) or shop.destinations[0]
    return shop.destinations[0]


def show_draft(dispatcher: CollectingDispatcher, order: Order, intro: str = "") -> None:
    """The draft's summary and the question, with buttons to pay, change it or not now."""
    catalog = default_catalog()
    periods = {
        f" (billed every {product.interval})"
        for line in order.lines
        if (product := catalog.get(line.product_id)) and product.interval
    }
    lead = f"{intro}\n" if intro else ""
    dispatcher.utter_message(
        text=f"{lead}Your order {order.id}:\n{order.summary(catalog)}{''.join(periods)}\n"
        f"Shall I send you the payment link?\n{HOW_TO_CHANGE}",
        buttons=[PAY_BUTTON, CHANGE_BUTTON, DECLINE_BUTTON],
    )
