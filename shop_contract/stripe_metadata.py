"""Metadata keys the action server puts on Stripe objects and the connector reads back from
Stripe's events to find the conversation and the order."""

from __future__ import annotations

# The Stripe API version both processes call Stripe with (the action server's Checkout, the
# connector's refunds): the shapes our code reads are those of this version.
STRIPE_API_VERSION = "2026-10-28.endive"

CUSTOMER_KEY = "whatsapp_user_id"
ORDER_ID_KEY = "order_id"

# The conversation slot that remembers the Stripe Customer a WhatsApp customer pays as
# (actions/payments/customers.py); the privacy tooling reads it to name what stays at Stripe.
STRIPE_CUSTOMER_SLOT = "stripe_customer_id"
