"""Actions for paying: the payment link, and the follow-ups to Stripe's events.

Stripe events reach the conversation as external intents (`EXTERNAL_…`) with entities set
by the connector: `order_id`, `checkout_session_id`, `stripe_event_id`, for payments
`amount_total`, `currency`, `livemode`, `payment_intent`, and for refunds `amount`,
`amount_refunded`. An event is answered for the order it names, whichever of the customer's
orders that is. Every status change goes through `Order.moved_to`, so a late or repeated event
never moves an order backwards or confirms it twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.catalog import default_catalog
from actions.conversation import (
    after,
    archive_order,
    current_order,
    find_order,
    latest_intent,
    save_order,
)
from actions.orders import Order, OrderStatus, format_amount
from actions.payments import (
    AlreadyPaid,
    PaymentError,
    cancel_payment,
    create_payment_link,
    refund_duplicate,
    stripe_settings,
    usable_attempt,
)
from actions.replies import send_link, yes_no_buttons

logger = logging.getLogger(__name__)

# What a payment turn must carry: the connector sets them from the verified Stripe event.
PAYMENT_ENTITIES = ("amount_total", "currency", "livemode", "checkout_session_id")
STATEMENT_DELAY = "It can take 5-10 days to show on your statement."


def entity(tracker: Tracker, name: str) -> Any | None:
    """The value of entity `name` in the latest (external) message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def event_order(tracker: Tracker) -> Order | None:
    """The customer's order the event names (current or not), else None; the current order
    for an event that names none."""
    order_id = entity(tracker, "order_id")
    if order_id is None:
        return current_order(tracker)
    return find_order(tracker, str(order_id))


def save_event_order(tracker: Tracker, order: Order) -> list[EventType]:
    """Records the order an event changed. It becomes the order being discussed, unless
    another order is still open (the customer may be about to pay that one)."""
    current = current_order(tracker)
    other_open = current is not None and current.id != order.id and current.is_open
    return save_order(tracker, order, current=not other_open)


async def send_new_payment_link(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, intro: str
) -> list[EventType]:
    """Stops the order's previous link, creates a Checkout Session for a new attempt and
    sends its link: an order has at most one live link.

    On failure the order is kept in its previous state (nothing is left 'awaiting payment'
    without a working link) and the customer is offered to try again. When the previous
    link was paid meanwhile, no new one is made: the confirmation is on its way.
    """
    fresh = order if order.status == OrderStatus.DRAFT else order.next_attempt(time.time())
    attempt = usable_attempt(fresh)
    try:
        if order.checkout_session_id and order.status != OrderStatus.EXPIRED:
            await cancel_payment(order)
        link = await create_payment_link(attempt, tracker.sender_id)
    except AlreadyPaid:
        dispatcher.utter_message(
            text=f"Your payment for order {order.id} has already gone through. "
            "You'll get the confirmation in a moment."
        )
        return []
    except PaymentError as error:
        logger.info("payment link not created: order=%s reason=%s", order.id, error)
        dispatcher.utter_message(
            text=f"Order {order.id}:\n{order.summary(default_catalog())}\n\n"
            f"{error.customer_message}",
            buttons=[{"title": "Try again", "payload": "/affirm"}],
        )
        return save_order(tracker, order)
    pending = attempt.with_link(link.session_id, link.url)
    body = f"{intro}\n{pending.summary(default_catalog())}"
    send_link(dispatcher, tracker, body, "Pay now", link.url)
    return save_order(tracker, pending)


async def stop_open_order(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType] | None:
    """Before a new order: an open order with a payment link has its link stopped at Stripe
    and is kept as cancelled (a late payment still confirms it), and the customer is told.

    Returns the events that record it (with the current order cleared), or None when the new
    order must not start: the old link was paid meanwhile, or Stripe could not stop it.
    A draft, which has no link, is simply replaced.
    """
    old = current_order(tracker)
    if old is None or not old.awaits_payment:
        return []
    try:
        await cancel_payment(old)
    except AlreadyPaid:
        dispatcher.utter_message(
            text=f"Your payment for order {old.id} has just gone through, so I haven't "
            "started another order. You'll get its confirmation in a moment; order again "
            "if you'd like more."
        )
        return None
    except PaymentError as error:
        logger.info("previous order's link not stopped: order=%s reason=%s", old.id, error)
        dispatcher.utter_message(
            text=f"Sorry, I couldn't stop the payment link of your order {old.id} just now, "
            "so I haven't started a new one. Please try again in a moment."
        )
        return None
    dispatcher.utter_message(
        text=f"Your earlier order {old.id} wasn't paid, so I've cancelled it and its payment "
        "link no longer works."
    )
    return archive_order(tracker, old.moved_to(OrderStatus.CANCELLED))


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
    """Marks the order paid, once, and confirms it; refuses payments that do not match it,
    and refunds a second payment for an order already paid."""

    def name(self) -> str:
        return "action_payment_succeeded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None:
            logger.warning(
                "payment for an order this conversation does not hold: order=%s event=%s",
                entity(tracker, "order_id"),
                entity(tracker, "stripe_event_id"),
            )
            return []
        mismatch = payment_mismatch(tracker, order)
        if mismatch:
            logger.error("payment not confirmed: order=%s mismatch=%s", order.id, mismatch)
            dispatcher.utter_message(
                text=f"We received a payment for order {order.id} and are checking it. "
                "We'll get back to you shortly."
            )
            return []
        session_id = str(entity(tracker, "checkout_session_id"))
        payment_intent = entity(tracker, "payment_intent")
        if order.is_paid:
            if order.paid_session in (None, session_id):
                return []  # the same payment told again (or by another event)
            await refund_second_payment(dispatcher, tracker, order, payment_intent)
            return []
        paid = order.paid_by(session_id, str(payment_intent) if payment_intent else None)
        await stop_other_link(order, session_id)
        dispatcher.utter_message(
            text=f"Payment received, thank you! Order {paid.id} is confirmed:\n"
            f"{paid.summary(default_catalog())}"
        )
        return save_event_order(tracker, paid)


async def stop_other_link(order: Order, paid_session: str) -> None:
    """Paid through an older session: the order's current link stops too, so it cannot be
    paid a second time. Best effort: a second payment that slips through is refunded."""
    if order.checkout_session_id in (None, paid_session):
        return
    try:
        await cancel_payment(order)
    except PaymentError as error:
        logger.info("paid order's other link not stopped: order=%s reason=%s", order.id, error)


async def refund_second_payment(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, payment_intent: Any
) -> None:
    """A second Checkout Session of an already paid order was paid too: refund it through
    Stripe, tell the customer, and log the event, order and refund for the shop."""
    event_id = entity(tracker, "stripe_event_id")
    amount = format_amount(order.total, order.currency)
    if not payment_intent:
        logger.error(
            "second payment without a payment intent, refund it by hand: event=%s order=%s",
            event_id,
            order.id,
        )
        dispatcher.utter_message(
            text=f"You were charged twice for order {order.id}. We'll refund the second "
            f"payment of {amount} shortly."
        )
        return
    try:
        refund_id = await refund_duplicate(order, str(payment_intent))
    except PaymentError as error:
        logger.error(
            "duplicate payment not refunded, refund it by hand: event=%s order=%s error=%s",
            event_id,
            order.id,
            error,
        )
        dispatcher.utter_message(
            text=f"You were charged twice for order {order.id}. {error.customer_message}"
        )
        return
    logger.warning(
        "duplicate payment refunded: event=%s order=%s refund=%s", event_id, order.id, refund_id
    )
    dispatcher.utter_message(
        text=f"You were charged twice for order {order.id}, so we refunded the second "
        f"payment of {amount}. {STATEMENT_DELAY}"
    )


def payment_mismatch(tracker: Tracker, order: Order) -> str | None:
    """Why this payment turn cannot confirm `order`, or None when it can.

    The connector sets amount, currency, livemode and Checkout Session from the verified
    Stripe event; a turn without any of them did not come from one and confirms nothing.
    """
    values = {name: entity(tracker, name) for name in PAYMENT_ENTITIES}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        return "missing " + ",".join(missing)
    amount, currency = values["amount_total"], values["currency"]
    livemode, session_id = values["livemode"], values["checkout_session_id"]
    if isinstance(amount, bool) or amount != order.total:
        return f"amount {amount} != {order.total}"
    if str(currency).lower() != order.currency:
        return f"currency {currency} != {order.currency}"
    if not order.had_session(str(session_id)):
        return f"session {session_id} is not one of this order's"
    settings = stripe_settings()
    if settings is None:
        return "livemode cannot be checked without STRIPE_SECRET_KEY"
    expected = settings.secret_key.startswith(("sk_live_", "rk_live_"))
    if livemode is not expected:
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
        recorded = save_event_order(tracker, expired)
        return recorded + await send_new_payment_link(
            dispatcher,
            after(tracker, recorded),
            expired,
            f"Your payment link for order {order.id} expired, so here's a fresh one:",
        )


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
        payment_intent = entity(tracker, "payment_intent")
        if order.payment_intent and payment_intent and payment_intent != order.payment_intent:
            return []  # the refund of a duplicate payment: the customer was told then
        refunded_in_all = entity(tracker, "amount_refunded")
        charged = entity(tracker, "amount")
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
