"""Metadata keys the action server puts on Stripe objects and the connector reads back from
Stripe's events to find the conversation and the order."""

from __future__ import annotations

# The Stripe API version both processes call Stripe with (the action server's Checkout, the
# connector's refunds): the shapes our code reads are those of this version.
STRIPE_API_VERSION = "2026-10-28.endive"

CUSTOMER_KEY = "whatsapp_user_id"
ORDER_ID_KEY = "order_id"
