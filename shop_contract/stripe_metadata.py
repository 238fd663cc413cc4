"""Metadata keys the action server puts on Stripe objects and the connector reads back from
Stripe's events to find the conversation and the order."""

from __future__ import annotations

CUSTOMER_KEY = "whatsapp_user_id"
ORDER_ID_KEY = "order_id"
