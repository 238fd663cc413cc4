"""A Stripe customer portal session that opens straight on what the customer asked for:
cancelling the subscription, changing its card, or changing its plan (Stripe's
`flow_data` deep links). Its `url` is a short-lived bearer link to the customer's billing:
it is sent to the customer only, never logged.
"""

from __future__ import annotations

import logging
import re

import stripe
from stripe.params.billing_portal import SessionCreateParams, SessionCreateParamsFlowData

from actions.payments.checkout_links import customer_missing
from actions.payments.client import stripe_client
from actions.payments.errors import PaymentError
from actions.settings import DEFAULT_RETURN_URL, action_settings
from shop_contract.links import is_customer_link
from shop_contract.shop import Shop

logger = logging.getLogger(__name__)

# The customer's words (intents) and the portal flow each one opens.
CANCEL = "subscription_cancel"
CHANGE_CARD = "subscription_change_card"
CHANGE_PLAN = "subscription_change_plan"
FLOW_TYPES = {
    CANCEL: "subscription_cancel",
    CHANGE_CARD: "payment_method_update",
    CHANGE_PLAN: "subscription_update",
}
PORTAL_FAILED = "I couldn't open Stripe's page for it just now."
# Stripe no longer has the Customer (deleted, or a test-mode one under a live key): asking
# again will not help, so the customer hears so rather than "just now".
CUSTOMER_GONE = "Stripe no longer has the customer record it was paid with."


def flow_data(topic: str, subscription: str) -> SessionCreateParamsFlowData:
    """The deep link for `topic`: cancel and plan flows name the subscription; the card
    flow is the customer's (their subscriptions are charged to the card they give)."""
    kind = FLOW_TYPES[topic]
    if kind == "subscription_cancel":
        return {"type": kind, "subscription_cancel": {"subscription": subscription}}
    if kind == "subscription_update":
        return {"type": kind, "subscription_update": {"subscription": subscription}}
    return {"type": "payment_method_update"}


def return_url(shop: Shop) -> str:
    """Where the portal's "return" leads: back to this chat on WhatsApp (wa.me with the
    shop's WhatsApp number, `contact.whatsapp` in data/shop.yml), else the page Checkout
    returns to (CHECKOUT_SUCCESS_URL)."""
    if shop.contact.whatsapp:
        return "https://wa.me/" + re.sub(r"\D", "", shop.contact.whatsapp)
    settings = action_settings().stripe
    return settings.success_url if settings else DEFAULT_RETURN_URL


def portal_params(customer: str, topic: str, subscription: str, shop: Shop) -> SessionCreateParams:
    """The portal session request; pure."""
    return {
        "customer": customer,
        "return_url": return_url(shop),
        "flow_data": flow_data(topic, subscription),
    }


async def portal_link(customer: str, topic: str, subscription: str, shop: Shop) -> str:
    """A portal session's URL for `customer`, opening on `topic`'s flow for `subscription`;
    PaymentError when Stripe refuses or cannot answer, or gives no usable link."""
    client = stripe_client()
    try:
        session = await client.v1.billing_portal.sessions.create_async(
            params=portal_params(customer, topic, subscription, shop)
        )
    except stripe.StripeError as error:
        logger.warning(
            "portal session not created: topic=%s error=%s code=%s status=%s",
            topic,
            type(error).__name__,
            error.code,
            error.http_status,
        )
        gone = customer_missing(error)
        message = CUSTOMER_GONE if gone else PORTAL_FAILED
        raise PaymentError(message, f"{type(error).__name__}: {error.code}") from error
    if not is_customer_link(session.url):
        raise PaymentError(PORTAL_FAILED, f"portal session {session.id} has no usable url")
    return str(session.url)
