"""Following up an unpaid payment link: the one message after it expires, and the
customer's opt-out from such messages.

When an order's current link expires unpaid (`EXTERNAL_checkout_expired` for the session
the order holds), the customer gets one follow-up for that order, ever: Stripe's recovery
link (`after_expiration.recovery.url`, a copy of the expired session) when the session had
recovery, else a fresh link as before. The order records it (`followed_up`), so a later
expiry of the same order (its fresh link, a re-sent event) is silent; the connector keys
the turn's notifications by the order too (connectors/stripe/webhook.py `outbox_origin`),
which holds even when two turns race. Nothing goes to a customer who said "stop"
(`reminders_opt_out`, kept across sessions until they say "remind me again"), nor while a
person has the conversation (the customer's replies go to the shop then). Each follow-up
says how to opt out, and a "no thanks" right after it means stop too, but only after a
follow-up that went out (`expiry_followup_sent`, a featurized slot every expiry turn and
every reminder turn sets, actions/reminder_actions.py): a silent turn leaves "no" a plain
no. Ordering again does not opt back in: stopping reminders is consent withdrawn, and only
the customer's own words give it back. Stopping reminders is not cancelling a subscription:
a subscriber is told that their subscription goes on, and how to end it.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import after, entity, event_order, save_event_order
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from actions.payment_link_actions import send_new_payment_link
from actions.payments.portal import CANCEL
from actions.replies import send_link
from actions.settings import action_settings
from actions.subscription_help import latest_news, subscriptions_held
from shop_contract.catalog import default_catalog
from shop_contract.entities import CHECKOUT_SESSION_ID, HANDED_OVER, RECOVERY_URL
from shop_contract.intents import SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING
from shop_contract.links import is_customer_link

logger = logging.getLogger(__name__)

OPT_OUT_SLOT = "reminders_opt_out"
# Featurized: true only right after an expiry or reminder turn that sent a message, so a
# "no thanks" then means stop (data/rules_reminders.yml); every expiry turn, every reminder
# turn and every opt-out sets it.
FOLLOWUP_SENT_SLOT = "expiry_followup_sent"
OPT_OUT_HINT = "Reply STOP and I won't send you payment reminders."
RECOVERY_BUTTON = "Complete payment"


def opted_out(tracker: Tracker) -> bool:
    """Whether the customer said stop to payment reminders (and not 'remind me' since)."""
    return tracker.get_slot(OPT_OUT_SLOT) is True


def recovery_url(tracker: Tracker) -> str | None:
    """The expired session's recovery URL the connector passed on, when recovery is on."""
    settings = action_settings().stripe
    url = entity(tracker, RECOVERY_URL)
    if settings is None or not settings.recovery or not isinstance(url, str):
        return None
    return url if is_customer_link(url) else None


def is_current_link(order: Order | None, session_id: Any) -> bool:
    """An expiry that concerns the order's live link: not an older session of it (stopped
    when a new link went out), not an order paid, cancelled or expired already."""
    return (
        order is not None
        and order.can_move_to(OrderStatus.EXPIRED)
        and (session_id is None or session_id == order.checkout_session_id)
    )


def why_not_followed_up(order: Order, tracker: Tracker) -> str | None:
    """Why an expired link gets no follow-up, or None when it should get one."""
    if order.followed_up:
        return "followed_up"
    if opted_out(tracker):
        return "opted_out"
    # A person has the conversation: the customer's replies go to the shop, so the "reply
    # STOP" a follow-up invites would never reach the bot (as for the reminder).
    if entity(tracker, HANDED_OVER):
        return "handed_over"
    return None


class ActionCheckoutExpired(Action):
    """The order's payment link expired unpaid: one follow-up per order, unless opted out."""

    def name(self) -> str:
        return "action_checkout_expired"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        order = event_order(tracker)
        if order is None or not is_current_link(order, entity(tracker, CHECKOUT_SESSION_ID)):
            return [SlotSet(FOLLOWUP_SENT_SLOT, False)]
        reason = why_not_followed_up(order, tracker)
        if reason is not None:
            logger.info("expired link not followed up: order=%s reason=%s", order.id, reason)
            silent = save_event_order(tracker, order.moved_to(OrderStatus.EXPIRED))
            return [*silent, SlotSet(FOLLOWUP_SENT_SLOT, False)]
        url = recovery_url(tracker)
        expired = order.moved_to(
            OrderStatus.EXPIRED, followed_up=True, recovery_sent=url is not None
        )
        recorded = save_event_order(tracker, expired)
        if url is None:
            renewed = await send_new_payment_link(
                dispatcher,
                after(tracker, recorded),
                expired,
                f"Your payment link for order {order.id} expired, so here's a fresh one:",
                OPT_OUT_HINT,
            )
            sent = new_link_in(renewed, order)
            return [*recorded, *renewed, SlotSet(FOLLOWUP_SENT_SLOT, sent)]
        send_link(
            dispatcher,
            tracker,
            f"Your payment link for order {order.id} expired, but your order is saved:\n"
            f"{order.summary(default_catalog())}\n"
            f"Tap below to pay whenever you're ready.\n\n{OPT_OUT_HINT}",
            RECOVERY_BUTTON,
            url,
        )
        return [*recorded, SlotSet(FOLLOWUP_SENT_SLOT, True)]


def new_link_in(events: list[EventType], order: Order) -> bool:
    """Whether these events give the order a new Checkout Session: its fresh link went out
    (not a failure to make one, nor a payment found meanwhile)."""
    return any(
        event.get("event") == "slot"
        and event.get("name") == "checkout_session_id"
        and event.get("value") not in (None, order.checkout_session_id)
        for event in events
    )


class ActionStopReminders(Action):
    """'stop', 'don't remind me': no more payment reminders or recovery links, remembered."""

    def name(self) -> str:
        return "action_stop_reminders"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = (
            "Okay, I won't send you any more payment reminders. Your orders stay as they "
            'are. If you change your mind, just say "remind me again".'
        )
        renewing = renewing_subscription(tracker)
        if renewing is None:
            dispatcher.utter_message(text=text)
        else:
            # "stop charging me" can land here: stopping reminders does not stop a
            # subscription, so say how to cancel it rather than let the customer believe so.
            dispatcher.utter_message(
                text=f"{text}\n\nThis does not stop your {renewing} subscription. To end "
                'it, say "cancel my subscription".',
                buttons=[{"title": "End subscription", "payload": f"/{CANCEL}"}],
            )
        return [SlotSet(OPT_OUT_SLOT, True), SlotSet(FOLLOWUP_SENT_SLOT, False)]


def renewing_subscription(tracker: Tracker) -> str | None:
    """The name of the customer's subscription product when they hold one not known to be
    cancelled or ending, else None. The conversation only knows the news of its current
    session, so the reply states no more than that stopping reminders leaves it alone."""
    held = subscriptions_held(tracker, default_catalog())
    if not held:
        return None
    order, product = held[-1]
    if latest_news(tracker, order) in (SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING):
        return None
    return product.name


class ActionResumeReminders(Action):
    """'remind me again': payment reminders and recovery links are back on."""

    def name(self) -> str:
        return "action_resume_reminders"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(
            text="Okay, payment reminders are on. I don't set reminders for a time you pick: "
            "if a payment link of yours runs out unpaid, I'll send you one message with a "
            "way to finish paying. Reply STOP any time to turn that off."
        )
        return [SlotSet(OPT_OUT_SLOT, False)]
