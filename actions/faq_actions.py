"""Actions answering customers' questions about the shop and its products.

The texts come from actions/shop_answers.py (data/shop.yml and the catalog); these actions
only read what the customer asked (the `country` or `product` entity, the message text) and
send the answer. A question asked while the bot waits for a yes to the payment link ("how
much is delivery?") is answered and the payment link offered again, so the yes that follows
still sends it (data/rules_faq.yml).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.catalog_messages import product_message, shows_catalog
from actions.conversation import current_order
from actions.order_actions import mentioned_product
from actions.orders.states import OrderStatus
from actions.replies import yes_no_buttons
from actions.shop_answers import (
    contact_answer,
    delivery_answer,
    hours_answer,
    payment_answer,
    product_answer,
    returns_answer,
)
from shop_contract.catalog import Catalog, Product, default_catalog
from shop_contract.shop import default_shop

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def previous_bot_action(tracker: Tracker) -> str | None:
    """The bot's last action before the customer's latest message (not `action_listen`)."""
    seen_latest_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_latest_message:
                return None
            seen_latest_message = True
        elif seen_latest_message and event.get("event") == "action":
            name = event.get("name")
            if name != "action_listen":
                return str(name)
    return None


# Answers that keep the payment-link question open when it was asked just before.
ANSWERS_KEEPING_THE_QUESTION = (
    "action_answer_delivery",
    "action_answer_payment_methods",
    "action_answer_returns",
    "action_answer_opening_hours",
    "action_answer_contact",
)


def send_answer(dispatcher: CollectingDispatcher, tracker: Tracker, text: str) -> None:
    """`text`, and when the customer had just been asked whether to send the payment link
    for a new order, that question again (with its buttons)."""
    order = current_order(tracker)
    asked = previous_bot_action(tracker) in ("action_start_order", *ANSWERS_KEEPING_THE_QUESTION)
    if order is None or order.status != OrderStatus.DRAFT or not asked:
        dispatcher.utter_message(text=text)
        return
    dispatcher.utter_message(
        text=f"{text}\n\nYour order {order.id} is ready: shall I send you the payment link?",
        buttons=yes_no_buttons("Yes, pay now", "No"),
    )


def order_button(product: Product, title: str = "Order it") -> dict[str, str]:
    """A reply button that starts an order for `product`."""
    return {"title": title, "payload": f'/order{{"product": "{product.id}"}}'}


def asked_products(tracker: Tracker, catalog: Catalog) -> list[Product]:
    """The products the latest message names (in order, once each), else the one the
    conversation is about (the `product` slot), else none."""
    named: list[Product] = []
    for mention in tracker.get_latest_entity_values("product"):
        product = catalog.get(str(mention)) or catalog.find(str(mention))
        if product and product not in named:
            named.append(product)
    if named:
        return named
    product = mentioned_product(tracker, catalog)
    return [product] if product else []


class ActionAnswerDelivery(Action):
    """Delivery to the country asked about (entity `country`), or to every destination."""

    def name(self) -> str:
        return "action_answer_delivery"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        country = next(tracker.get_latest_entity_values("country"), None)
        send_answer(
            dispatcher, tracker, delivery_answer(default_shop(), default_catalog(), country)
        )
        return []


class ActionAnswerPaymentMethods(Action):
    """How customers can pay, with a clear no for a method named that the shop does not take."""

    def name(self) -> str:
        return "action_answer_payment_methods"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        asked = str((tracker.latest_message or {}).get("text") or "")
        send_answer(dispatcher, tracker, payment_answer(default_shop(), asked))
        return []


class ActionAnswerReturns(Action):
    """The returns and refunds policy."""

    def name(self) -> str:
        return "action_answer_returns"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        send_answer(dispatcher, tracker, returns_answer(default_shop()))
        return []


class ActionAnswerOpeningHours(Action):
    """The week's opening hours, and whether the shop is open right now."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def name(self) -> str:
        return "action_answer_opening_hours"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        send_answer(dispatcher, tracker, hours_answer(default_shop(), self.clock()))
        return []


class ActionAnswerContact(Action):
    """Phone, email and address, and whether the team is in right now."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def name(self) -> str:
        return "action_answer_contact"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        send_answer(dispatcher, tracker, contact_answer(default_shop(), self.clock()))
        return []


CART_OR_YES = "Add it to your cart and send it to me, or say yes and I'll start an order."


class ActionAnswerProduct(Action):
    """Price, description and availability of the product asked about, for that product only,
    with a button to order it. The product stays the one discussed, so a "yes" orders it.
    On WhatsApp with a Meta catalog, the answer is that product's message from the catalog
    (its photo, and a cart button), and "yes" still orders it."""

    def name(self) -> str:
        return "action_answer_product"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        catalog = default_catalog()
        products = asked_products(tracker, catalog)
        if not products:
            dispatcher.utter_message(
                text="Which product would you like to know about?",
                buttons=[
                    {"title": p.name, "payload": f'/ask_product{{"product": "{p.id}"}}'}
                    for p in catalog
                ],
            )
            return [SlotSet("product", None)]
        shop = default_shop()
        if len(products) == 1:
            (product,) = products
            if product.retailer_id and shows_catalog(tracker):
                text = f"{product_answer(product, shop)}\n{CART_OR_YES}"
                dispatcher.utter_message(json_message=product_message(product, text))
                return [SlotSet("product", product.id)]
            dispatcher.utter_message(
                text=product_answer(product, shop), buttons=[order_button(product)]
            )
            return [SlotSet("product", product.id)]
        dispatcher.utter_message(
            text="\n\n".join(product_answer(p, shop) for p in products),
            buttons=[order_button(p, p.name) for p in products],
        )
        return [SlotSet("product", None)]


# Read and validated when the action server imports its actions: a broken data/shop.yml stops
# start-up with the ShopError naming the field, instead of failing a customer's question later.
default_shop()
