"""Actions for browsing, starting, inspecting and cancelling an order."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.cancelled_payments import RECOVERY_LINK_AFTER_CANCEL
from actions.catalog_messages import catalog_products_message, shows_catalog
from actions.conversation import archive_order, current_order, known_orders, save_order
from actions.draft_order import destination_for, requested, show_draft
from actions.flow_message import order_flow_message
from actions.orders import basket
from actions.orders.basket import BasketError
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.orders.states import OrderStatus
from actions.orders.text_order import Wanted
from actions.payments.errors import PaymentError
from actions.payments.link_cancellation import cancel_payment
from actions.replies import on_whatsapp, yes_no_buttons
from actions.settings import action_settings
from shop_contract.catalog import Catalog, Product, default_catalog
from shop_contract.fulfilment import Fulfilment

STATUS_TEXT = {
    OrderStatus.DRAFT: "not confirmed yet",
    OrderStatus.AWAITING_PAYMENT: "waiting for your payment",
    OrderStatus.PAID: "paid — we're preparing it",
    OrderStatus.PAYMENT_FAILED: "payment did not go through",
    OrderStatus.EXPIRED: "the payment link expired",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.PARTIALLY_REFUNDED: "partly refunded",
    OrderStatus.REFUNDED: "refunded",
}


def status_text(order: Order) -> str:
    """The order's state for the customer: the shop's shipping news, once there is some
    (and the order is not wholly refunded), else its payment state; a partial refund is
    said either way."""
    part = (
        format_amount(order.refunded, order.currency)
        if order.status == OrderStatus.PARTIALLY_REFUNDED
        else None
    )
    if order.status != OrderStatus.REFUNDED:
        news = None
        if order.fulfilment == Fulfilment.DELIVERED:
            news = "delivered"
        elif order.fulfilment == Fulfilment.SHIPPED:
            news = f"shipped with {order.carrier}, track it at {order.tracking_url}"
        if news is not None:
            return f"{news}; {part} refunded so far" if part else news
    text = STATUS_TEXT[order.status]
    return f"{text} ({part} so far)" if part else text


def price_label(product: Product) -> str:
    """'€12.90' or '€14.90 / month' for subscriptions."""
    price = format_amount(product.unit_amount, product.currency)
    return f"{price} / {product.interval}" if product.interval else price


def catalog_text(catalog: Catalog) -> str:
    lines = ["Here's what we have:"]
    lines += [f"• {p.name} — {price_label(p)}: {p.description}" for p in catalog]
    return "\n".join(lines)


def product_buttons(catalog: Catalog) -> list[dict[str, str]]:
    """One button per product; its payload starts an order for that product."""
    return [{"title": p.name, "payload": f'/order{{"product": "{p.id}"}}'} for p in catalog]


def mentioned_product(tracker: Tracker, catalog: Catalog) -> Product | None:
    """The product the latest message names (entity), else the `product` slot."""
    for mention in (
        next(tracker.get_latest_entity_values("product"), None),
        tracker.get_slot("product"),
    ):
        if isinstance(mention, str):
            product = catalog.get(mention) or catalog.find(mention)
            if product:
                return product
    return None


def open_order_in_the_way(
    dispatcher: CollectingDispatcher, tracker: Tracker, catalog: Catalog
) -> bool:
    """True (and the customer told to pay or cancel it first) when an order already has its
    payment link: a new order does not replace it silently. A draft may be replaced."""
    existing = current_order(tracker)
    if existing is None or not existing.is_open or existing.status == OrderStatus.DRAFT:
        return False
    dispatcher.utter_message(
        text=f"You still have order {existing.id} open "
        f"({STATUS_TEXT[existing.status]}):\n{existing.summary(catalog)}\n"
        "Pay it first, or cancel it to start a new one.",
        buttons=[
            {"title": "Pay now", "payload": "/affirm"},
            {"title": "Cancel order", "payload": "/cancel_order"},
        ],
    )
    return True


class ActionShowCatalog(Action):
    """Lists the products with prices; each can be ordered with one tap. On WhatsApp with a
    Meta catalog, the products are shown from it and the customer sends a cart."""

    def name(self) -> str:
        return "action_show_catalog"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        catalog = default_catalog()
        if shows_catalog(tracker) and catalog.in_meta_catalog:
            elsewhere = [p for p in catalog if p.retailer_id is None]
            extras = "\n".join(
                ["Also available, just ask:"]
                + [f"• {p.name} — {price_label(p)}" for p in elsewhere]
            )
            message = catalog_products_message(
                catalog, catalog_text(catalog), extras if elsewhere else ""
            )
            dispatcher.utter_message(json_message=message)
            return []
        dispatcher.utter_message(text=catalog_text(catalog), buttons=product_buttons(catalog))
        return []


class ActionStartOrder(Action):
    """Starts a draft order for the products the message names, each with its quantity
    ("one espresso and two filter coffee"), and asks to confirm it.

    Without a product it opens the order Flow on WhatsApp (when WHATSAPP_FLOW_ID is set)
    or asks which product. An order already waiting for payment is not replaced silently:
    the customer pays it or cancels it first.
    """

    def name(self) -> str:
        return "action_start_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        catalog = default_catalog()
        if open_order_in_the_way(dispatcher, tracker, catalog):
            return [SlotSet("product", None)]
        wanted = requested(tracker, catalog).wanted
        product = mentioned_product(tracker, catalog)
        if not wanted and product is not None:
            wanted = (Wanted(product.id, None),)
        settings = action_settings().flow_message
        if not wanted and settings is not None and on_whatsapp(tracker):
            dispatcher.utter_message(
                json_message=order_flow_message(catalog, tracker.sender_id, settings)
            )
            return [SlotSet("product", None)]
        if not wanted:
            dispatcher.utter_message(
                text="Which product would you like?", buttons=product_buttons(catalog)
            )
            return [SlotSet("product", None)]
        try:
            order = basket.started(catalog, wanted, destination_for(tracker, None))
        except BasketError as refused:
            dispatcher.utter_message(text=str(refused))
            return [SlotSet("product", None)]
        show_draft(dispatcher, order)
        return [*save_order(tracker, order), SlotSet("product", None)]


class ActionOrderStatus(Action):
    """Tells the current order's status, or the last past one, or that there is none."""

    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        catalog = default_catalog()
        order = current_order(tracker)
        if order is None:
            held = list(known_orders(tracker).values())
            if held:
                last = held[-1]
                state = (
                    status_text(last)
                    if last.fulfilment != Fulfilment.UNFULFILLED
                    else last.status.value.replace("_", " ")
                )
                dispatcher.utter_message(
                    text=f"You have no open order. Your last one, {last.id}, was {state}."
                )
            else:
                dispatcher.utter_message(
                    text='You don\'t have any orders with us yet. Say "catalog" to see '
                    "what we sell."
                )
            return []
        text = f"Order {order.id}: {status_text(order)}.\n{order.summary(catalog)}"
        if order.status == OrderStatus.AWAITING_PAYMENT and order.payment_link:
            text += f"\nYou can pay here: {order.payment_link}"
        dispatcher.utter_message(text=text)
        return []


class ActionAskCancelOrder(Action):
    """Asks the customer to confirm cancelling their open order."""

    def name(self) -> str:
        return "action_ask_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = current_order(tracker)
        if order is None or not order.is_open:
            dispatcher.utter_message(text="You have no open order to cancel.")
            return []
        dispatcher.utter_message(
            text=f"Cancel order {order.id}?\n{order.summary(default_catalog())}",
            buttons=yes_no_buttons("Yes, cancel it", "No, keep it"),
        )
        return []


class ActionCancelOrder(Action):
    """Cancels the open order: its payment link stops working; it stays among the
    customer's orders, so a payment through that link that still went through is confirmed.
    Stripe's recovery link of an expired one cannot be stopped: when one was sent, the
    customer is told a payment through it is refunded (actions/cancelled_payments.py)."""

    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = current_order(tracker)
        if order is None or not order.is_open:
            dispatcher.utter_message(text="There's no open order to cancel.")
            return []
        if order.checkout_session_id:
            try:
                await cancel_payment(order)
            except PaymentError as error:
                dispatcher.utter_message(text=error.customer_message)
                return []
        cancelled = order.moved_to(OrderStatus.CANCELLED)
        text = f"Order {order.id} is cancelled. Nothing was charged."
        if order.recovery_sent:
            text += f" {RECOVERY_LINK_AFTER_CANCEL}"
        dispatcher.utter_message(text=text)
        return archive_order(tracker, cancelled)
