"""The request for a reminder before a payment link expires (actions/reminder_actions.py)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker

from actions.orders.model import Order
from actions.payments.checkout_links import link_expires_at
from actions.replies import on_whatsapp
from actions.settings import action_settings
from shop_contract.custom_messages import (
    CHECKOUT_REMINDER_KEY,
    REMINDER_AT,
    REMINDER_ORDER_ID,
    REMINDER_SESSION_ID,
)


def reminder_request(tracker: Tracker, order: Order) -> dict[str, Any] | None:
    """The custom message asking the connector to remind the customer of `order`'s link
    some minutes before it expires; None when reminders are off, the link is not a
    Checkout Session, or the channel is not WhatsApp (nobody there to keep the request)."""
    settings = action_settings().stripe
    if settings is None or not settings.reminder_minutes or not order.checkout_session_id:
        return None
    if not on_whatsapp(tracker):
        return None
    expires_at = link_expires_at(order, settings)
    return {
        CHECKOUT_REMINDER_KEY: {
            REMINDER_ORDER_ID: order.id,
            REMINDER_SESSION_ID: order.checkout_session_id,
            REMINDER_AT: expires_at - settings.reminder_minutes * 60,
        }
    }
