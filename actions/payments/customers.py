"""Which Stripe Customer a WhatsApp customer pays as, kept in their conversation.

Checkout makes the Customer (always in subscription mode; with `customer_creation: always`
in payment mode) or reuses the one remembered here, so each WhatsApp customer is one Stripe
Customer and Stripe's customer portal knows their subscriptions. The id is remembered only
from a Checkout Session that paid one of the customer's orders, as Stripe reports it, never
from anything typed; it is never looked up by listing Stripe's customers. Erasing the
customer's data forgets it here (the Customer stays at Stripe: actions/privacy_actions.py).
"""

from __future__ import annotations

import logging

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions.orders.model import Order
from actions.payments.verification import CheckoutPayment
from shop_contract.stripe_metadata import STRIPE_CUSTOMER_SLOT

logger = logging.getLogger(__name__)

STRIPE_CUSTOMER_PREFIX = "cus_"


def stripe_customer(tracker: Tracker) -> str | None:
    """The Stripe Customer this conversation's customer paid as, if one is known."""
    value = tracker.get_slot(STRIPE_CUSTOMER_SLOT)
    if isinstance(value, str) and value.startswith(STRIPE_CUSTOMER_PREFIX):
        return value
    return None


def subscription_customer(order: Order, tracker: Tracker) -> str | None:
    """The Stripe Customer that paid `order` (its subscription's, for the portal); for an
    order paid before orders kept their Customer (`Order.customer` unset), the one the
    conversation remembers (Stripe refuses a portal for a subscription not that Customer's)."""
    customer = order.customer
    if customer and customer.startswith(STRIPE_CUSTOMER_PREFIX):
        return customer
    return stripe_customer(tracker) if not customer else None


def paid_as(checkout: CheckoutPayment) -> str | None:
    """The Stripe Customer a verified session paid as, when it is one."""
    customer = checkout.customer
    return customer if customer and customer.startswith(STRIPE_CUSTOMER_PREFIX) else None


def remember_customer(tracker: Tracker, paid_as: str | None) -> list[EventType]:
    """The slot event that remembers `paid_as` (the Customer of a session that paid one of
    this customer's orders) when none is remembered yet: the first one stays, so Checkout
    keeps reusing it. A different one (an older link made before any Customer existed, or
    a recovered copy of one) is the paid order's own (`Order.customer`, which its portal
    opens as) and is only logged here."""
    if paid_as is None or not paid_as.startswith(STRIPE_CUSTOMER_PREFIX):
        return []
    known = stripe_customer(tracker)
    if known is None:
        return [SlotSet(STRIPE_CUSTOMER_SLOT, paid_as)]
    if known != paid_as:
        logger.warning(
            "a paid session's stripe customer differs from the remembered one; the first "
            "is kept for checkout"
        )
    return []


def forget_customer() -> list[EventType]:
    """The slot event that forgets the remembered Customer: Stripe no longer has it."""
    return [SlotSet(STRIPE_CUSTOMER_SLOT, None)]
