"""Actions for paying: the payment link, and the follow-ups to Stripe's events.

Stripe events reach the conversation as external intents (`EXTERNAL_…`) with entities set
by the connector: `order_id`, `checkout_session_id`, `stripe_event_id`, for payments
`amount_total`, `currency`, `livemode`, `payment_intent`, and for refunds `amount`,
`amount_refunded`, and `duplicate_payment` when the connector's claim found the order paid
already. A payment is confirmed only from what Stripe answers about the session named (never
from the entities). An event is answered for the order it names, whichever of the customer's
orders that is. Every status change goes through `Order.moved_to`, so a late or repeated event
never moves an order backwards or confirms it twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import (
    after,
    archive_order,
    current_order,
    find_order,
    known_orders,
    latest_intent,
    save_order,
)
from actions.orders.model import Order
from actions.orders.money import format_amount
from actions.orders.states import OrderStatus
from actions.payments import (
    AlreadyPaid,
    AttemptUsed,
    CheckoutPayment,
    PaymentError,
    PaymentProcessing,
    cancel_duplicate_subscription,
    cancel_payment,
    create_payment_link,
    refund_duplicate,
    retrieve_checkout,
    stripe_settings,
    usable_attempt,
)
from actions.replies import send_link, yes_no_buttons
from shop_contract.catalog import default_catalog
from shop_contract.entities import (
    AMOUNT,
    AMOUNT_REFUNDED,
    CHECKOUT_SESSION_ID,
    DUPLICATE_PAYMENT,
    ORDER_ID,
    PAYMENT_INTENT,
    STRIPE_EVENT_ID,
    SUBSCRIPTION_ID,
)
from shop_contract.intents import (
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_RENEWAL_FAILED,
    SUBSCRIPTION_RENEWED,
    SUBSCRIPTION_UPDATED,
)

logger = logging.getLogger(__name__)

STATEMENT_DELAY = "It can take 5-10 days to show on your statement."


def entity(tracker: Tracker, name: str) -> Any | None:
    """The value of entity `name` in the latest (external) message, or None."""
    return next(tracker.get_latest_entity_values(name), None)


def event_order(tracker: Tracker) -> Order | None:
    """The customer's order the event names (current or not), else None; the current order
    for an event that names none."""
    order_id = entity(tracker, ORDER_ID)
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
        try:
            link = await create_payment_link(attempt, tracker.sender_id)
        except AttemptUsed:
            attempt = attempt.next_attempt(time.time())
            link = await create_payment_link(attempt, tracker.sender_id)
    except AlreadyPaid:
        dispatcher.utter_message(
            text=f"Your payment for order {order.id} has already gone through. "
            "You'll get the confirmation in a moment."
        )
        return []
    except PaymentProcessing as error:
        dispatcher.utter_message(text=error.customer_message)
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


@dataclass(frozen=True)
class OtherLinks:
    """What became of the customer's other orders' links before a new order's link.

    `events` record the orders whose links were stopped (kept as cancelled, so a late payment
    still confirms them). `blocked` names the order whose link is still live, when one is:
    it was paid meanwhile (`paid`), its payment is clearing (`processing`), or Stripe could
    not stop it now (`unreachable`). The customer has been told either way.
    """

    events: list[EventType]
    blocked: str | None = None
    blocked_by: Order | None = None


async def stop_other_links(
    dispatcher: CollectingDispatcher, tracker: Tracker, new_order_id: str | None
) -> OtherLinks:
    """Before a new order gets its link: every other order of the customer whose link may
    still be live has it stopped at Stripe (`sessions.expire`), so only one order can be paid.
    Drafts have no link and are simply replaced."""
    events: list[EventType] = []
    for old in known_orders(tracker).values():
        if old.id == new_order_id or not old.awaits_payment:
            continue
        try:
            await cancel_payment(old)
        except AlreadyPaid:
            dispatcher.utter_message(
                text=f"Your payment for order {old.id} has just gone through, so I haven't "
                "started another order. You'll get its confirmation in a moment; order again "
                "if you'd like more."
            )
            return OtherLinks(events, "paid", old)
        except PaymentProcessing as error:
            dispatcher.utter_message(
                text=f"{error.customer_message} I haven't started another order meanwhile."
            )
            return OtherLinks(events, "processing", old)
        except PaymentError as error:
            logger.info("previous order's link not stopped: order=%s reason=%s", old.id, error)
            return OtherLinks(events, "unreachable", old)
        dispatcher.utter_message(
            text=f"Your earlier order {old.id} wasn't paid, so I've cancelled it and its "
            "payment link no longer works."
        )
        now = after(tracker, events)
        cancelled = old.moved_to(OrderStatus.CANCELLED)
        if (current_order(now) or old).id == old.id:
            events += archive_order(now, cancelled)  # no current order until the new one
        else:
            events += save_order(now, cancelled, current=False)
    return OtherLinks(events)


def link_waits_for_old_order(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, old: Order
) -> list[EventType]:
    """Stripe could not stop the earlier order's link: the new order is kept as a draft
    (with its Flow token, so the same Flow makes no second order) and the customer can try
    again; the next try stops the old link first, then sends the new one."""
    dispatcher.utter_message(
        text=f"Your order {order.id} is saved:\n{order.summary(default_catalog())}\n\n"
        f"I couldn't stop the payment link of your earlier order {old.id} just now, so I "
        "haven't sent a new link yet. Tap Try again in a moment and I'll send it.",
        buttons=[{"title": "Try again", "payload": "/affirm"}],
    )
    return save_order(tracker, order)


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
        intro = f"Here's your secure payment link for order {order.id}:"
        if order.status != OrderStatus.DRAFT:
            return await send_new_payment_link(dispatcher, tracker, order, intro)
        others = await stop_other_links(dispatcher, tracker, order.id)
        if others.blocked_by is not None:
            if others.blocked != "unreachable":
                return others.events
            return others.events + link_waits_for_old_order(
                dispatcher, after(tracker, others.events), order, others.blocked_by
            )
        return others.events + await send_new_payment_link(
            dispatcher, after(tracker, others.events), order, intro
        )


class ActionPaymentSucceeded(Action):
    """Marks the order paid, once, and confirms it; refunds a second payment for an order
    already paid.

    Nothing about the payment is taken from the turn's entities: they only name the Checkout
    Session, which is looked up at Stripe. When Stripe cannot answer, the action fails
    (StripeUnavailable), so the connector keeps the event and replays it later.
    """

    def name(self) -> str:
        return "action_payment_succeeded"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None:
            return payment_for_unknown_order(dispatcher, tracker)
        session_id = entity(tracker, CHECKOUT_SESSION_ID)
        if session_id is None:
            return not_confirmed(dispatcher, tracker, order, "no checkout session named")
        try:
            checkout = await retrieve_checkout(str(session_id))
        except PaymentError as error:
            return not_confirmed(dispatcher, tracker, order, str(error))
        mismatch = payment_mismatch(checkout, order)
        if mismatch:
            return not_confirmed(dispatcher, tracker, order, mismatch)
        if is_duplicate(tracker, order, checkout.session_id):
            await refund_second_payment(dispatcher, tracker, order, checkout)
            return []
        if order.is_paid:
            if order.paid_session is None:
                # Paid before sessions were recorded: this may be that payment told again or
                # a second one, which only the shop can tell apart at Stripe.
                logger.error(
                    "payment for an order paid before its session was recorded, not "
                    "confirmed again; check at Stripe whether it is a second payment to "
                    "refund: event=%s order=%s",
                    entity(tracker, STRIPE_EVENT_ID),
                    order.id,
                )
            return []  # the same payment told again (or by another event)
        paid = order.paid_by(checkout.session_id, checkout.payment_intent, checkout.subscription)
        await stop_other_link(order, checkout.session_id)
        dispatcher.utter_message(
            text=f"Payment received, thank you! Order {paid.id} is confirmed:\n"
            f"{paid.summary(default_catalog())}"
        )
        return save_event_order(tracker, paid)


def payment_for_unknown_order(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    """A payment for an order this conversation does not hold (dropped, or never ours): the
    shop must look at it, and the customer hears that it arrived."""
    order_id = entity(tracker, ORDER_ID)
    logger.error(
        "payment for an order this conversation does not hold, check it by hand: event=%s order=%s",
        entity(tracker, STRIPE_EVENT_ID),
        order_id,
    )
    if order_id is not None:
        dispatcher.utter_message(
            text=f"We received a payment for order {order_id} and are checking it; "
            "the shop will contact you."
        )
    return []


def not_confirmed(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, why: str
) -> list[EventType]:
    logger.error(
        "payment not confirmed: event=%s order=%s mismatch=%s",
        entity(tracker, STRIPE_EVENT_ID),
        order.id,
        why,
    )
    dispatcher.utter_message(
        text=f"We received a payment for order {order.id} and are checking it. "
        "We'll get back to you shortly."
    )
    return []


def is_duplicate(tracker: Tracker, order: Order, session_id: str) -> bool:
    """True when this session's payment is a second one for the order: the connector's
    atomic claim says so (`duplicate_payment`, whatever this tracker holds), or the tracker
    has the order paid through another session. The session that paid the order is never
    its own duplicate (that would refund the payment the order was confirmed with)."""
    flagged = str(entity(tracker, DUPLICATE_PAYMENT)).lower() == "true"
    if order.paid_session == session_id:
        if flagged:
            logger.error(
                "duplicate flag on the payment that confirmed the order, not refunded: "
                "event=%s order=%s",
                entity(tracker, STRIPE_EVENT_ID),
                order.id,
            )
        return False
    return flagged or (order.is_paid and order.paid_session is not None)


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
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, checkout: CheckoutPayment
) -> None:
    """A second Checkout Session of an already paid order was paid too: refund it through
    Stripe (the PaymentIntent Stripe names for that session), or stop a second subscription,
    tell the customer, and log the event, order and refund for the shop."""
    event_id = entity(tracker, STRIPE_EVENT_ID)
    amount = format_amount(checkout.amount_total or order.total, order.currency)
    twice = f"You were charged twice for order {order.id}."
    if checkout.payment_intent is None and checkout.subscription is not None:
        await cancel_second_subscription(dispatcher, tracker, order, checkout.subscription)
        return
    if checkout.payment_intent is None:
        logger.error(
            "second payment without a payment intent, refund it by hand: event=%s order=%s",
            event_id,
            order.id,
        )
        dispatcher.utter_message(
            text=f"{twice} We'll refund the second payment of {amount} shortly."
        )
        return
    try:
        refund_id = await refund_duplicate(order, checkout.payment_intent)
    except PaymentError as error:
        logger.error(
            "duplicate payment not refunded, refund it by hand: event=%s order=%s error=%s",
            event_id,
            order.id,
            error,
        )
        dispatcher.utter_message(text=f"{twice} {error.customer_message}")
        return
    logger.warning(
        "duplicate payment refunded: event=%s order=%s refund=%s", event_id, order.id, refund_id
    )
    dispatcher.utter_message(
        text=f"You were charged twice for order {order.id}, so we refunded the second "
        f"payment of {amount}. {STATEMENT_DELAY}"
    )


async def cancel_second_subscription(
    dispatcher: CollectingDispatcher, tracker: Tracker, order: Order, subscription: str
) -> None:
    """A second subscription for a paid order: cancelled at Stripe at once so it never bills
    again. Its first payment is refunded by a person (the log line names what to refund):
    under this API version an invoice's payment is reached through its InvoicePayments, a
    path this shop does not automate."""
    event_id = entity(tracker, STRIPE_EVENT_ID)
    try:
        await cancel_duplicate_subscription(order, subscription)
    except PaymentError as error:
        logger.error(
            "second subscription not cancelled, cancel and refund it by hand: "
            "event=%s order=%s subscription=%s error=%s",
            event_id,
            order.id,
            subscription,
            error,
        )
        dispatcher.utter_message(
            text=f"You were charged twice for order {order.id}. {error.customer_message}"
        )
        return
    logger.error(
        "second subscription cancelled, refund its first payment by hand: "
        "event=%s order=%s subscription=%s",
        event_id,
        order.id,
        subscription,
    )
    dispatcher.utter_message(
        text=f"You were charged twice for order {order.id}. We've cancelled the second "
        "subscription so it won't bill you again, and we'll refund its first payment shortly."
    )


def payment_mismatch(checkout: CheckoutPayment, order: Order) -> str | None:
    """Why Stripe's account of this Checkout Session cannot confirm `order`, or None."""
    if not checkout.is_paid:
        return f"session {checkout.status}/{checkout.payment_status}, not paid"
    if checkout.order_id != order.id:
        return f"session of order {checkout.order_id}"
    if checkout.amount_total != order.total:
        return f"amount {checkout.amount_total} != {order.total}"
    if str(checkout.currency).lower() != order.currency:
        return f"currency {checkout.currency} != {order.currency}"
    settings = stripe_settings()
    if settings is None:
        return "livemode cannot be checked without STRIPE_SECRET_KEY"
    expected = settings.secret_key.startswith(("sk_live_", "rk_live_"))
    if checkout.livemode is not expected:
        return f"livemode {checkout.livemode} with a {'live' if expected else 'test'} key"
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
        session_id = entity(tracker, CHECKOUT_SESSION_ID)
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
    SUBSCRIPTION_CANCELLED: "Your subscription is cancelled. We'd love to have you back any time.",
}


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
        message = SUBSCRIPTION_MESSAGES.get(intent or "")
        if message:
            dispatcher.utter_message(text=message)
        return []
