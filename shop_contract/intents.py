"""Reserved intents: set by the connector, never typed or tapped by a customer.

`EXTERNAL_*` intents carry verified Stripe events, messages the bot cannot read, carts sent
from the shop's Meta catalog and the end of a hand-over to a person; `flow_*` intents carry
WhatsApp Flow requests and completions.
"""

from __future__ import annotations

RESERVED_PREFIXES = ("EXTERNAL_", "flow_")

PAYMENT_SUCCEEDED = "EXTERNAL_payment_succeeded"
PAYMENT_PROCESSING = "EXTERNAL_payment_processing"
PAYMENT_FAILED = "EXTERNAL_payment_failed"
CHECKOUT_EXPIRED = "EXTERNAL_checkout_expired"
# A payment link expires soon (CHECKOUT_REMINDER_MINUTES): the connector's reminder sweep,
# with entities ORDER_ID and CHECKOUT_SESSION_ID.
CHECKOUT_REMINDER = "EXTERNAL_checkout_reminder"
REFUNDED = "EXTERNAL_refunded"
# The shop marked a paid order shipped (entities ORDER_ID, CARRIER, TRACKING_URL) or
# delivered (ORDER_ID): the connector's orders API and `make orders`.
ORDER_SHIPPED = "EXTERNAL_order_shipped"
ORDER_DELIVERED = "EXTERNAL_order_delivered"
SUBSCRIPTION_RENEWED = "EXTERNAL_subscription_renewed"
SUBSCRIPTION_RENEWAL_FAILED = "EXTERNAL_subscription_renewal_failed"
SUBSCRIPTION_UPDATED = "EXTERNAL_subscription_updated"
SUBSCRIPTION_CANCELLED = "EXTERNAL_subscription_cancelled"
# Cancelled at the end of the period it is paid for (the customer portal's default): it
# goes on until then and does not renew; entity SUBSCRIPTION_ENDS_AT when Stripe says when.
SUBSCRIPTION_ENDING = "EXTERNAL_subscription_ending"
# A cancellation at the end of the period was switched off (Stripe's previous_attributes
# show cancel_at_period_end or cancel_at set before): the subscription renews again.
SUBSCRIPTION_RENEWING = "EXTERNAL_subscription_renewing"
UNREADABLE_MESSAGE = "EXTERNAL_unreadable_message"
# The customer sent a cart from the Meta catalog (a WhatsApp `order` message); entities
# CATALOG_ID and one CATALOG_ITEM per product line (shop_contract/entities.py).
CATALOG_ORDER = "EXTERNAL_catalog_order"

FLOW_INIT = "flow_init"
FLOW_BACK = "flow_back"
FLOW_DATA_EXCHANGE = "flow_data_exchange"
FLOW_COMPLETED = "flow_completed"
FLOW_ERROR = "flow_error"

# The shop handed the conversation back to the bot (HANDOVER_ENDED_BY says who).
HANDOVER_ENDED = "EXTERNAL_handover_ended"
