"""Keys of the custom messages (`json_message`) an action sends for the connector to act on,
never sent to WhatsApp as they are."""

from __future__ import annotations

# The Flow screen an action computed, answered to the pending Flow data-exchange request.
FLOW_RESPONSE_KEY = "flow_response"
# An erase request: the connector erases the customer once the turn is saved; the value
# holds the `done` and `failed` texts.
ERASE_REQUEST_KEY = "erase_customer_data"
