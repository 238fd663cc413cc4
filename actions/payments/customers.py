"""Which Stripe Customer a WhatsApp customer pays as, kept in their conversation.

Checkout makes the Customer (always in subscription mode; with `customer_creation: always`
in payment mode) or reuses the one remembered here, so each WhatsApp customer is one Stripe
Customer and Stripe's customer portal knows their subscriptions. The id is remembered only
from a Checkout Session that paid one of the customer's orders, as Stripe reports it, never
from anything typed; it is never looked up by listing Stripe's customers. Erasing the
customer's data forgets it here (the Customer stays at Stripe: actions/privacy_actions.py).
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from shop_contract.stripe_metadata import STRIPE_CUSTOMER_SLOT

STRIPE_CUSTOMER_PREFIX = "cus_"


def stripe_customer(tracker: Tracker) -> str | None:
    """The Stripe Customer this conversation's customer paid as, if one is known."""
    value = tracker.get_slot(STRIPE_CUSTOMER_SLOT)
    if isinstance(value, str) and value.startswith(STRIPE_CUSTOMER_PREFIX):
        return value
    return None


def remember_customer(tracker: Tracker, paid_as: str | None) -> list[EventType]:
    """The slot event that remembers `paid_as` (the Customer of a session that paid one of
    this customer's orders), when it is new."""
    if paid_as is None or not paid_as.startswith(STRIPE_CUSTOMER_PREFIX):
        return []
    if stripe_customer(tracker) == paid_as:
        return []
    return [SlotSet(STRIPE_CUSTOMER_SLOT, paid_as)]
