"""Follow-ups to Stripe's other events: a payment processing or failed, a refund, and the
subscription's own events (an expired link: actions/followup_actions.py).

Each arrives as an external intent (`EXTERNAL_…`) with entities set by the connector
(`order_id`, `checkout_session_id`, `stripe_event_id`, for refunds `amount`,
`amount_refunded` and `payment_intent`). An event is answered for the order it names, whichever
of the customer's orders that is. Every status change goes through `Order.moved_to`, so a late
or repeated event never moves an order backwards.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity, event_order, latest_intent, save_event_order
from actions.orders.money import format_amount
from actions.orders.states import OrderStatus
from actions.replies import STATEMENT_DELAY, yes_no_buttons
from shop_contract.entities import (
    AMOUNT,
    AMOUNT_REFUNDED,
    PAYMENT_INTENT,
    STRIPE_EVENT_ID,
    SUBSCRIPTION_ENDS_AT,
    SUBSCRIPTION_ID,
)
from shop_contract.intents import (
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_ENDING,
    SUBSCRIPTION_RENEWAL_FAILED,
    SUBSCRIPTION_RENEWED,
    SUBSCRIPTION_RENEWING,
    SUBSCRIPTION_UPDATED,
)
from shop_contract.shop import default_shop

logger = logging.getLogger(__name__)


class ActionPaymentProcessing(Action):
    """Checkout completed but the money is not there yet (e.g. a bank debit)."""

    def name(self) -> str:
        return "action_payment_processing"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or order.is_paid:
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
        return save_event_order(tracker, failed)


class ActionRefunded(Action):
    """A refund of the order's payment: says how much this refund gave back, and moves the
    order to `refunded` once all of it is, else to `partially_refunded`."""

    def name(self) -> str:
        return "action_refunded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or not order.is_paid:
            return []
        payment_intent = entity(tracker, PAYMENT_INTENT)
        if order.payment_intent and payment_intent and payment_intent != order.payment_intent:
            return []  # the refund of a duplicate payment: the customer was told then
        refunded_in_all = entity(tracker, AMOUNT_REFUNDED)
        charged = entity(tracker, AMOUNT)
        if not isinstance(refunded_in_all, int) or not isinstance(charged, int):
            logger.warning("refund without amounts ignored: order=%s", order.id)
            return []
        this_refund = refunded_in_all - order.refunded
        if this_refund <= 0 or not order.can_move_to(OrderStatus.REFUNDED):
            return []  # told already (a repeated or older event)
        refunded = order.with_refunds(refunded_in_all, charged)
        text = f"We've refunded {format_amount(this_refund, order.currency)} for order {order.id}."
        if refunded.status == OrderStatus.PARTIALLY_REFUNDED:
            text += (
                f" In all, {format_amount(refunded_in_all, order.currency)} of "
                f"{format_amount(charged, order.currency)} is refunded."
            )
        dispatcher.utter_message(text=f"{text} {STATEMENT_DELAY}")
        return save_event_order(tracker, refunded)


SUBSCRIPTION_MESSAGES = {
    SUBSCRIPTION_RENEWED: "Your subscription has renewed — thank you! "
    "Your next delivery is on its way.",
    SUBSCRIPTION_RENEWAL_FAILED: "We couldn't take this month's subscription "
    "payment. Please update your card using the link in Stripe's email.",
    SUBSCRIPTION_UPDATED: "Your subscription has been updated.",
    SUBSCRIPTION_RENEWING: "Your subscription is no longer cancelled: it will renew again "
    "as before.",
    SUBSCRIPTION_CANCELLED: "Your subscription is cancelled. We'd love to have you back any time.",
}


def ending_text(ends_at: Any, zone: tzinfo) -> str:
    """What a subscription cancelled at the end of its period means for the customer."""
    when = end_date(ends_at, zone)
    until = f"it ends on {when}" if when else "it ends at the end of the period you paid for"
    return f"Your subscription is cancelled: {until} and will not renew."


def end_date(ends_at: Any, zone: tzinfo) -> str | None:
    """A Unix time as a date the customer reads, in the shop's time zone `zone` (e.g.
    "3 January 2027"), else None."""
    try:
        moment = datetime.fromtimestamp(int(ends_at), tz=zone)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return f"{moment.day} {moment:%B %Y}"


class ActionSubscriptionEvent(Action):
    """One message per subscription event (renewed, renewal failed, updated, cancelled).

    An event about another Subscription than the one that paid its order is about a second
    subscription we cancelled as a duplicate: the customer was told then, and hears nothing
    now (their own subscription goes on).
    """

    def name(self) -> str:
        return "action_subscription_event"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = latest_intent(tracker)
        order = event_order(tracker)
        subscription = entity(tracker, SUBSCRIPTION_ID)
        if order and order.subscription and subscription and subscription != order.subscription:
            logger.info(
                "subscription event about a duplicate of the order's, not told: event=%s "
                "order=%s subscription=%s",
                entity(tracker, STRIPE_EVENT_ID),
                order.id,
                subscription,
            )
            return []
        if intent == SUBSCRIPTION_ENDING:
            dispatcher.utter_message(
                text=ending_text(entity(tracker, SUBSCRIPTION_ENDS_AT), default_shop().hours.zone)
            )
            return []
        message = SUBSCRIPTION_MESSAGES.get(intent or "")
        if message:
            dispatcher.utter_message(text=message)
        return []
