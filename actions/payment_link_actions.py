"""The payment link: an order's Stripe Checkout link, sent to the customer.

An order has at most one live link, and a customer at most one order that can be paid: a new
link for an order stops its previous one, and a new order's link stops every other order's
link first (`stop_other_links`, also used when a WhatsApp Flow completes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.cancelled_payments import RECOVERY_LINK_AFTER_CANCEL
from actions.conversation import after, archive_order, current_order, known_orders, save_order
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payments.checkout_links import create_payment_link, usable_attempt
from actions.payments.customers import forget_customer, stripe_customer
from actions.payments.errors import AlreadyPaid, AttemptUsed, PaymentError, PaymentProcessing
from actions.payments.link_cancellation import cancel_payment
from actions.payments.reminders import reminder_request
from actions.replies import send_link
from shop_contract.catalog import default_catalog

logger = logging.getLogger(__name__)


async def send_new_payment_link(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    order: Order,
    intro: str,
    footer: str = "",
) -> list[EventType]:
    """Stops the order's previous link, creates a Checkout Session for a new attempt and
    sends its link: an order has at most one live link.

    On failure the order is kept in its previous state (nothing is left 'awaiting payment'
    without a working link) and the customer is offered to try again. When the previous
    link was paid meanwhile, no new one is made: the confirmation is on its way.
    """
    fresh = order if order.status == OrderStatus.DRAFT else order.next_attempt(time.time())
    attempt = usable_attempt(fresh)
    paid_as = stripe_customer(tracker)
    try:
        if order.checkout_session_id and order.status != OrderStatus.EXPIRED:
            await cancel_payment(order)
        try:
            link = await create_payment_link(attempt, tracker.sender_id, paid_as)
        except AttemptUsed:
            attempt = attempt.next_attempt(time.time())
            link = await create_payment_link(attempt, tracker.sender_id, paid_as)
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
    if footer:
        body += f"\n\n{footer}"
    send_link(dispatcher, tracker, body, "Pay now", link.url)
    request = reminder_request(tracker, pending)
    if request is not None:
        dispatcher.utter_message(json_message=request)
    return save_order(tracker, pending) + (forget_customer() if link.customer_dropped else [])


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
        if old.recovery_sent:
            text = f"Your earlier order {old.id} wasn't paid, so I've cancelled it. "
            text += RECOVERY_LINK_AFTER_CANCEL
        else:
            text = (
                f"Your earlier order {old.id} wasn't paid, so I've cancelled it and its "
                "payment link no longer works."
            )
        dispatcher.utter_message(text=text)
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
