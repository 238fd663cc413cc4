"""Entities the connector sets on reserved intents and the actions read."""

from __future__ import annotations

# Flow requests and completions.
FLOW_TOKEN = "flow_token"  # noqa: S105 - an entity name, not a secret
FLOW_SCREEN = "flow_screen"
FLOW_DATA = "flow_data"

# A cart from the Meta catalog (`EXTERNAL_catalog_order`): the catalog it came from, and
# one entity per line, {retailer_id, quantity, item_price, currency} as the cart showed them
# (item_price a decimal text in major units: information, never a price to charge).
CATALOG_ID = "catalog_id"
CATALOG_ITEM = "catalog_item"

# Stripe events (`EXTERNAL_*`).
STRIPE_EVENT_ID = "stripe_event_id"
ORDER_ID = "order_id"
CHECKOUT_SESSION_ID = "checkout_session_id"
PAYMENT_INTENT = "payment_intent"
SUBSCRIPTION_ID = "subscription_id"  # the Subscription a subscription event is about
# When a subscription cancelled at the end of its period ends (Unix seconds), on
# EXTERNAL_subscription_ending.
SUBSCRIPTION_ENDS_AT = "subscription_ends_at"
# True when the connector's atomic claim found the order already paid.
DUPLICATE_PAYMENT = "duplicate_payment"
# Copied from the Stripe object by the connector under Stripe's own field names.
AMOUNT = "amount"
AMOUNT_TOTAL = "amount_total"
AMOUNT_REFUNDED = "amount_refunded"
CURRENCY = "currency"
LIVEMODE = "livemode"
# An expired Checkout Session's `after_expiration.recovery.url`: opens a copy of it at Stripe.
RECOVERY_URL = "recovery_url"

# The shop shipped or delivered an order (`EXTERNAL_order_shipped` / `_delivered`, with
# ORDER_ID): the carrier and the https tracking link, checked by shop_contract.fulfilment.
CARRIER = "carrier"
TRACKING_URL = "tracking_url"

# Hand-over to a person: `staff` (resumed by the shop) or `timeout` (nobody wrote in time).
HANDOVER_ENDED_BY = "handover_ended_by"
ENDED_BY_STAFF = "staff"
ENDED_BY_TIMEOUT = "timeout"
# On a Stripe event's or a reminder's turn: a person has the customer's conversation now (an
# open hand-over, which only the connector knows; the `handover` slot says one was asked for).
HANDED_OVER = "handed_over"

# Set only by the connector (on reserved intents): never taken from a customer's message,
# not even from a button payload that names an intent the customer may send.
CONNECTOR_ONLY_ENTITIES = frozenset(
    {
        FLOW_TOKEN,
        FLOW_SCREEN,
        FLOW_DATA,
        CATALOG_ID,
        CATALOG_ITEM,
        STRIPE_EVENT_ID,
        ORDER_ID,
        CHECKOUT_SESSION_ID,
        PAYMENT_INTENT,
        SUBSCRIPTION_ID,
        DUPLICATE_PAYMENT,
        AMOUNT,
        AMOUNT_TOTAL,
        AMOUNT_REFUNDED,
        CURRENCY,
        LIVEMODE,
        RECOVERY_URL,
        HANDOVER_ENDED_BY,
        HANDED_OVER,
        CARRIER,
        TRACKING_URL,
    }
)
