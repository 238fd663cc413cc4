"""Keys of the custom messages (`json_message`) an action sends for the connector to act on,
never sent to WhatsApp as they are.

Why custom messages: the action server and the Rasa server are two processes that share only
this package, and the action runs inside the customer's turn. The turn's output channel is
the connector's own object and sees every message the action sends, in that turn, before
the tracker is saved; so a message under a reserved key reaches the connector at the right
moment, with everything it needs (the texts to send, whatever happens next), and no
other channel (`rasa shell`, REST) ever gets one: the actions send them on WhatsApp only.
"""

from __future__ import annotations

# The Flow screen an action computed, answered to the pending Flow data-exchange request.
FLOW_RESPONSE_KEY = "flow_response"
# An erase request: the connector erases the customer once the turn is saved; the value
# holds the `done` and `failed` texts.
ERASE_REQUEST_KEY = "erase_customer_data"
# A hand-over to a person: once the turn is saved, the connector pauses the bot for the
# customer and tells the shop. The value is a dict with these keys:
HANDOVER_REQUEST_KEY = "hand_over_to_person"
HANDOVER_REASON = "reason"  # why (asked, complaint, not_understood), for the shop
HANDOVER_PAUSED_TEXT = "paused"  # sent when the shop is told: a person will answer here
HANDOVER_UNAVAILABLE_TEXT = "unavailable"  # sent when nobody can be told: how to reach them
HANDOVER_TRANSCRIPT = "transcript"  # the customer's last messages, for the shop's context

# Products from the shop's Meta catalog (WHATSAPP_CATALOG_ID): the connector sends them as
# WhatsApp's catalog, multi-product or single-product message, with the catalog's id, within
# Meta's limits (connectors/whatsapp/commerce.py). The value is a dict with these keys:
CATALOG_PRODUCTS_KEY = "catalog_products"
PRODUCTS_KIND = "kind"  # one of the three kinds below
KIND_CATALOG = "catalog"  # the whole catalog behind a "View catalog" button
KIND_PRODUCT_LIST = "product_list"  # chosen products in titled sections
KIND_PRODUCT = "product"  # one product
PRODUCTS_HEADER = "header"  # the product list's header text
PRODUCTS_BODY = "body"  # the message's text
PRODUCTS_SECTIONS = "sections"  # product list: [{"title": str, "retailer_ids": [str, …]}]
PRODUCTS_RETAILER_ID = "retailer_id"  # the product; a catalog message's thumbnail
PRODUCTS_FALLBACK = "fallback"  # the text to send instead when the connector has no catalog

# A payment link went out and the shop reminds before links expire (CHECKOUT_REMINDER_MINUTES):
# the connector keeps one reminder per customer and order, due at `remind_at` (connectors/
# storage/reminders.py). The value is a dict with these keys:
CHECKOUT_REMINDER_KEY = "checkout_reminder"
REMINDER_ORDER_ID = "order_id"
REMINDER_SESSION_ID = "session_id"
REMINDER_AT = "remind_at"  # seconds since the epoch
