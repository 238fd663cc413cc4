"""Actions for paying: the payment link, and the follow-ups to Stripe's events.

Stripe events reach the conversation as external intents (`EXTERNAL_…`) with entities set
by the connector: `order_id`, `checkout_session_id`, and for payments `amount_total`,
`currency`, `livemode`. Every status change goes through `Order.moved_to`, so a late or
repeated event never moves an order backwards or confirms it twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.catalog import default_catalog
from actions.conversation import archive_order, current_order, latest_intent, save_order
from actions.orders import Order, OrderStatus, format_amount
from actions.payments import (
    PaymentError,
    create_payment_link,
    stripe_settings,
    usable_attempt,
)
from actions.replies import send_link, yes_no_buttons

logger = logging.getLogger(__name__)


def entity(tracker: Tracker, name: str) -> Any | None:
    """The value of entity `name` in the latest (external) message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def event_order(tracker: Tracker) -> Order | None:
    """The current order when the event is about it (same order id), else None."""
    order = current_order(tracker)
    order_id = entity(tracker, "order_id")
    if order is None or (order_id is not None and order_id != order.id):
        return None
    return order


async def send_new_payment_link(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, intro: str
) -> list[EventType]:
    """Creates a Checkout Session for a new attempt of `order` and sends its link.

    On failure the order is kept in its previous state (nothing is left 'awaiting payment'
    without a working link) and the customer is offered to try again.
    """
    fresh = order if order.status == OrderStatus.DRAFT else order.next_attempt(time.time())
    attempt = usable_attempt(fresh)
    try:
        link = await create_payment_link(attempt, tracker.sender_id)
    except PaymentError as error:
        logger.info("payment link not created: order=%s reason=%s", order.id, error)
        dispatcher.utter_message(
            text=f"Order {order.id}:\n{order.summary(default_catalog())}\n\n"
            f"{error.customer_message}",
            buttons=[{"title": "Try again", "payload": "/affirm"}],
        )
        return save_order(order)
    pending = attempt.moved_to(
        OrderStatus.AWAITING_PAYMENT, checkout_session_id=link.session_id, payment_link=link.url
    )
    body = f"{intro}\n{pending.summary(default_catalog())}"
    send_link(dispatcher, tracker, body, "Pay now", link.url)
    return save_order(pending)


class ActionCreatePaymentLink(Action):
    """Sends a Stripe Checkout link for the current order (new attempt after a failure)."""

    def name(self) -> str:
        return "action_create_payment_link"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = current_order(tracker)
        if order is None or not order.is_open:
            dispatcher.utter_message(
                text="You have no open order to pay. Which product would you like?"
            )
            return []
        if order.status == OrderStatus.AWAITING_PAYMENT and order.payment_link:
            send_link(
                dispatcher,
                tracker,
                f"Your payment link for order {order.id}:",
                "Pay now",
                order.payment_link,
            )
            return []
        return await send_new_payment_link(
            dispatcher, tracker, order, f"Here's your secure payment link for order {order.id}:"
        )


class ActionPaymentSucceeded(Action):
    """Marks the order paid, once, and confirms it; refuses amounts that do not match."""

    def name(self) -> str:
        return "action_payment_succeeded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None:
            logger.warning(
                "payment for an order this conversation does not hold: order=%s",
                entity(tracker, "order_id"),
            )
            return []
        if order.status == OrderStatus.PAID:
            return []  # already confirmed: a repeated or second success event
        mismatch = payment_mismatch(tracker, order)
        if mismatch:
            logger.error("payment not confirmed: order=%s mismatch=%s", order.id, mismatch)
            dispatcher.utter_message(
                text=f"We received a payment for order {order.id} and are checking it. "
                "We'll get back to you shortly."
            )
            return []
        paid = order.moved_to(OrderStatus.PAID)
        dispatcher.utter_message(
            text=f"Payment received, thank you! Order {paid.id} is confirmed:\n"
            f"{paid.summary(default_catalog())}"
        )
        return archive_order(tracker, paid, keep_current=True)


def payment_mismatch(tracker: Tracker, order: Order) -> str | None:
    """Why the paid amount/currency/mode does not match the order, or None when it does."""
    amount = entity(tracker, "amount_total")
    currency = entity(tracker, "currency")
    livemode = entity(tracker, "livemode")
    if amount is not None and int(amount) != order.total:
        return f"amount {amount} != {order.total}"
    if currency is not None and str(currency).lower() != order.currency:
        return f"currency {currency} != {order.currency}"
    settings = stripe_settings()
    if livemode is not None and settings is not None:
        expected = settings.secret_key.startswith(("sk_live_", "rk_live_"))
        if bool(livemode) != expected:
            return f"livemode {livemode} with a {'live' if expected else 'test'} key"
    return None


class ActionPaymentProcessing(Action):
    """Checkout completed but the money is not there yet (e.g. a bank debit)."""

    def name(self) -> str:
        return "action_payment_processing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or order.status == OrderStatus.PAID:
            return []
        dispatcher.utter_message(
            text=f"Thanks! Your payment for order {order.id} is being processed. "
            "I'll confirm as soon as it clears."
        )
        return []


class ActionPaymentFailed(Action):
    """The payment was declined or failed: encourage, and offer a new link."""

    def name(self) -> str:
        return "action_payment_failed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or not order.can_move_to(OrderStatus.PAYMENT_FAILED):
            return []
        failed = order.moved_to(OrderStatus.PAYMENT_FAILED)
        dispatcher.utter_message(
            text=f"Your payment for order {order.id} didn't go through. No money was taken. "
            "Would you like a new payment link to try again?",
            buttons=yes_no_buttons("New payment link", "Not now"),
        )
        return save_order(failed)


class ActionCheckoutExpired(Action):
    """The payment link expired unused: a friendly nudge with a fresh link."""

    def name(self) -> str:
        return "action_checkout_expired"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        session_id = entity(tracker, "checkout_session_id")
        if (
            order is None
            or not order.can_move_to(OrderStatus.EXPIRED)
            or (session_id is not None and session_id != order.checkout_session_id)
        ):
            return []  # an old link, or the order moved on (paid, cancelled)
        expired = order.moved_to(OrderStatus.EXPIRED)
        return save_order(expired) + await send_new_payment_link(
            dispatcher,
            tracker,
            expired,
            f"Your payment link for order {order.id} expired, so here's a fresh one:",
        )


class ActionRefunded(Action):
    """The payment was refunded."""

    def name(self) -> str:
        return "action_refunded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or not order.can_move_to(OrderStatus.REFUNDED):
            return []
        refunded = order.moved_to(OrderStatus.REFUNDED)
        dispatcher.utter_message(
            text=f"We've refunded {format_amount(order.total, order.currency)} for order "
            f"{order.id}. It can take 5-10 days to show on your statement."
        )
        return archive_order(tracker, refunded, keep_current=True)


SUBSCRIPTION_MESSAGES = {
    "EXTERNAL_subscription_renewed": "Your subscription has renewed — thank you! "
    "Your next delivery is on its way.",
    "EXTERNAL_subscription_renewal_failed": "We couldn't take this month's subscription "
    "payment. Please update your card using the link in Stripe's email.",
    "EXTERNAL_subscription_updated": "Your subscription has been updated.",
    "EXTERNAL_subscription_cancelled": "Your subscription is cancelled. "
    "We'd love to have you back any time.",
}


class ActionSubscriptionEvent(Action):
    """One message per subscription event (renewed, renewal failed, updated, cancelled)."""

    def name(self) -> str:
        return "action_subscription_event"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = latest_intent(tracker)
        message = SUBSCRIPTION_MESSAGES.get(intent or "")
        if message:
            dispatcher.utter_message(text=message)
        return []
