"""Screen ids of the order Flow (data/flows/order_flow.json) that both processes name."""

from __future__ import annotations

SUCCESS_SCREEN = "SUCCESS"
# Shown by the connector when a turn overruns its budget; endpoint-free and terminal.
CONTINUE_IN_CHAT_SCREEN = "CONTINUE_IN_CHAT"
