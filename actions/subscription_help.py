"""Questions about the customer's subscription: its status and renewal, cancelling it, and
changing the card it is paid with. They are about the subscription, never a one-off order.

What the bot knows: the customer's paid subscription orders (the `orders` slot), each with
the Stripe Customer its session paid as (`order_customer`, as Stripe reported it), and the
Stripe subscription events seen in this conversation session. It does not ask Stripe for the
subscription's live state or exact next billing date, so it says how renewal works instead
of naming a date. Cancelling, changing the card and changing the plan happen on Stripe's
customer portal: a portal session opened on that very task (actions/payments/portal.py)
when the bot knows the subscription's Customer and the customer writes on WhatsApp, else
the portal's login link when data/shop.yml names it (`subscriptions.manage_url`), else
through a person. The portal's changes come back as
Stripe's `customer.subscription.*` events (actions/payment_event_actions.py).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import known_orders, latest_intent
from actions.faq_actions import order_button
from actions.handover_actions import TALK_TO_PERSON_BUTTON
from actions.orders.model import Order
from actions.payments.customers import subscription_customer
from actions.payments.errors import PaymentError
from actions.payments.portal import CANCEL, CHANGE_CARD, CHANGE_PLAN, portal_link
from actions.replies import on_whatsapp, send_link
from actions.shop_answers import price_text
from shop_contract.catalog import Catalog, Product, default_catalog
from shop_contract.entities import ORDER_ID
from shop_contract.intents import (
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_ENDING,
    SUBSCRIPTION_RENEWAL_FAILED,
    SUBSCRIPTION_RENEWING,
)
from shop_contract.shop import Shop, default_shop

STATUS = "subscription_status"
MANAGE_BUTTON_TEXT = "Manage subscription"
_WHAT = {
    CANCEL: "cancel it",
    CHANGE_CARD: "change the card it is paid with",
    CHANGE_PLAN: "change its plan",
}
PORTAL_BUTTONS = {
    CANCEL: "Cancel subscription",
    CHANGE_CARD: "Change card",
    CHANGE_PLAN: "Change plan",
}


def subscriptions_held(tracker: Tracker, catalog: Catalog) -> list[tuple[Order, Product]]:
    """The customer's paid orders of a subscription product, newest last."""
    held = []
    for order in known_orders(tracker).values():
        for line in order.lines:
            product = catalog.get(line.product_id)
            if product and product.is_subscription and order.is_paid:
                held.append((order, product))
    return held


def latest_news(tracker: Tracker, order: Order) -> str | None:
    """The latest subscription event of this session about `order` that changes what the
    customer should be told (cancelled, cancelled at the end of its period and not renewed
    since, or a renewal payment failed), else None."""
    renewing_again = False
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        parsed = event.get("parse_data") or {}
        intent = (parsed.get("intent") or {}).get("name")
        about = {e.get("entity"): e.get("value") for e in parsed.get("entities") or []}
        if about.get(ORDER_ID, order.id) != order.id:
            continue
        if intent in (SUBSCRIPTION_CANCELLED, SUBSCRIPTION_RENEWAL_FAILED):
            return str(intent)
        if intent == SUBSCRIPTION_RENEWING:
            renewing_again = True  # a later update switched the cancellation off
        if intent == SUBSCRIPTION_ENDING and not renewing_again:
            return SUBSCRIPTION_ENDING
    return None


def status_text(order: Order, product: Product, news: str | None) -> str:
    started = f"Your {product.name} subscription started with order {order.id}"
    if news == SUBSCRIPTION_CANCELLED:
        return f"{started} and is cancelled: no further payments are taken."
    if news == SUBSCRIPTION_ENDING:
        return (
            f"{started} and is cancelled: it goes on until the end of the period you paid "
            "for and will not renew."
        )
    if news == SUBSCRIPTION_RENEWAL_FAILED:
        return (
            f"{started}. Its last renewal payment didn't go through: please update the card "
            "it is paid with."
        )
    return (
        f"{started}: {price_text(product)}. Stripe renews it automatically on the same day "
        f"each {product.interval} until it is cancelled, and I send you a message here "
        "each time it renews."
    )


def manage_text(shop: Shop, topic: str) -> str:
    url_part = (
        f"You can {_WHAT[topic]} yourself on Stripe's customer portal: log in there with the "
        "email address you paid with."
    )
    if shop.subscriptions.manage_url is None:
        url_part = f"I can't {_WHAT[topic]} from this chat, but a person from our team can."
    return f"{url_part} {shop.subscriptions.cancellation}" if topic == CANCEL else url_part


class ActionSubscriptionHelp(Action):
    """Answers the subscription question asked (status, cancel, change card) for the
    customer's subscription, or says they have none and how to start one."""

    def name(self) -> str:
        return "action_subscription_help"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        catalog, shop = default_catalog(), default_shop()
        topic = latest_intent(tracker) or STATUS
        held = subscriptions_held(tracker, catalog)
        # "subscription" names the subscription product, but this is not a wish to order it.
        events: list[EventType] = [SlotSet("product", None)]
        if not held:
            self.no_subscription(dispatcher, catalog, topic)
            return events
        order, product = held[-1]
        news = latest_news(tracker, order)
        if topic not in _WHAT:
            dispatcher.utter_message(
                text=status_text(order, product, news),
                buttons=[
                    {"title": "End subscription", "payload": f"/{CANCEL}"},
                    {"title": "Change card", "payload": f"/{CHANGE_CARD}"},
                    {"title": "Change plan", "payload": f"/{CHANGE_PLAN}"},
                ],
            )
            return events
        if news == SUBSCRIPTION_CANCELLED or (news == SUBSCRIPTION_ENDING and topic == CANCEL):
            dispatcher.utter_message(text=status_text(order, product, news))
            return events
        about = f"Your {product.name} subscription (order {order.id})."
        portal_failed: str | None = None
        # The subscription's own Customer (the one its session paid as): another Customer
        # of this person cannot open it. Only on WhatsApp, where the sender is the
        # customer's own number: the portal link is a bearer link to their billing, and a
        # REST caller can post as anyone.
        customer = subscription_customer(order, tracker)
        if customer is not None and order.subscription and on_whatsapp(tracker):
            try:
                url = await portal_link(customer, topic, order.subscription, shop)
            except PaymentError as error:
                portal_failed = error.customer_message
            else:
                text = f"{about} Tap below to {_WHAT[topic]} on Stripe's secure page."
                if topic == CANCEL:
                    text += f" {shop.subscriptions.cancellation}"
                send_link(dispatcher, tracker, text, PORTAL_BUTTONS[topic], url)
                return events
        text = f"{about} {manage_text(shop, topic)}"
        if portal_failed:
            text = f"{about} {portal_failed} {manage_text(shop, topic)}"
        if shop.subscriptions.manage_url:
            send_link(dispatcher, tracker, text, MANAGE_BUTTON_TEXT, shop.subscriptions.manage_url)
        else:
            dispatcher.utter_message(text=text, buttons=[TALK_TO_PERSON_BUTTON])
        return events

    @staticmethod
    def no_subscription(dispatcher: CollectingDispatcher, catalog: Catalog, topic: str) -> None:
        offers = [p for p in catalog if p.is_subscription]
        text = "I can't find a subscription of yours in this chat."
        if topic in _WHAT:
            text += " If you subscribed from another number, a person from our team can help."
            dispatcher.utter_message(text=text, buttons=[TALK_TO_PERSON_BUTTON])
            return
        for product in offers:
            text += f"\n{product.name}: {price_text(product)}. {product.description}."
        dispatcher.utter_message(
            text=text, buttons=[order_button(p, "Subscribe") for p in offers[:1]]
        )
