"""The reminder before a payment link expires (CHECKOUT_REMINDER_MINUTES; 0 is off).

Rasa's own `ReminderScheduled` lives in one process's memory, is lost on a restart and
bypasses the outbox, so the reminder is the connector's: the turn that sends a link asks for
it (actions/payments/reminders.py: a custom message the WhatsApp connector keeps), the
connector stores one per customer and order and, when it is due, triggers
`EXTERNAL_checkout_reminder` with the order and the session it was asked for; the turn's
messages go through the outbox keyed by the order, so at most one reminder per order goes
out, whatever happens.

This action decides whether there is anything to say: only for an order still waiting to be
paid on exactly that link (not paid, cancelled, expired, nor given a newer link since) while
that link still works (after downtime the sweep runs overdue reminders before Stripe's
`checkout.session.expired` arrives: the expiry's own follow-up is the message then), to a
customer who has not said stop and is not handed over to a person, and not reminded of that
order before. Otherwise it is silent. A reminder that went out says "reply STOP", so a
"no thanks" right after it opts out too (`expiry_followup_sent` true, as after an expiry's
follow-up); after a silent reminder turn "no" is a plain no (data/rules_reminders.yml).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity, event_order, save_event_order
from actions.faq_actions import Clock, utc_now
from actions.followup_actions import FOLLOWUP_SENT_SLOT, OPT_OUT_HINT, opted_out
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payments.checkout_links import link_expires_at
from actions.replies import send_link
from actions.settings import action_settings
from shop_contract.catalog import default_catalog
from shop_contract.entities import CHECKOUT_SESSION_ID, HANDED_OVER

logger = logging.getLogger(__name__)

REMINDER_BUTTON = "Pay now"


def why_silent(order: Order | None, session_id: Any, tracker: Tracker, now: float) -> str | None:
    """Why no reminder goes out at `now` (seconds since the epoch), or None when it should."""
    if order is None:
        return "unknown_order"
    if order.status != OrderStatus.AWAITING_PAYMENT or not order.checkout_session_id:
        return "not_awaiting_payment"
    if session_id != order.checkout_session_id:
        return "older_link"
    if order.reminded:
        return "reminded"
    if link_expired(order, now):
        return "link_expired"
    if opted_out(tracker):
        return "opted_out"
    if entity(tracker, HANDED_OVER):  # a person has the conversation: no automatic nudge
        return "handed_over"
    if not order.payment_link:
        return "no_link"
    return None


def link_expired(order: Order, now: float) -> bool:
    """Whether the order's current link has run out by `now`, whether or not Stripe's
    `checkout.session.expired` has arrived yet."""
    settings = action_settings().stripe
    return settings is not None and link_expires_at(order, settings) <= now


class ActionCheckoutReminder(Action):
    """The order's link expires soon: one reminder per order, or nothing."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def name(self) -> str:
        return "action_checkout_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        session_id = entity(tracker, CHECKOUT_SESSION_ID)
        reason = why_silent(order, session_id, tracker, self.clock().timestamp())
        if order is None or order.payment_link is None or reason is not None:
            logger.info("payment reminder not sent: order=%s reason=%s", order and order.id, reason)
            return [SlotSet(FOLLOWUP_SENT_SLOT, False)]
        send_link(
            dispatcher,
            tracker,
            f"A reminder: your payment link for order {order.id} runs out soon.\n"
            f"{order.summary(default_catalog())}\n"
            f"Tap below to pay while it still works.\n\n{OPT_OUT_HINT}",
            REMINDER_BUTTON,
            order.payment_link,
        )
        reminded = save_event_order(tracker, order.moved_to(order.status, reminded=True))
        return [*reminded, SlotSet(FOLLOWUP_SENT_SLOT, True)]  # "no thanks" now means stop
