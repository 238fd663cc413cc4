"""The interactive message that opens the order Flow on WhatsApp.

Its first screen's data (the catalog) travels in the message, so opening the Flow needs no
endpoint call. The flow token names the conversation and expires (FLOW_TOKEN_TTL_HOURS,
default 72); the connector's Flow endpoint checks it without a lookup.
"""

from __future__ import annotations

from typing import Any

from actions.flow_screens import product_screen
from actions.settings import FlowMessageSettings
from shop_contract.catalog import Catalog
from shop_contract.flow_tokens import issue_token

FLOW_CTA = "Order now"


def order_flow_message(
    catalog: Catalog, conversation_id: str, settings: FlowMessageSettings
) -> dict[str, Any]:
    """The Graph API body of the Flow message for this conversation (a new token each time)."""
    first = product_screen(catalog)
    return {
        "type": "interactive",
        "interactive": {
            "type": "flow",
            "body": {"text": "Tap below to choose what you'd like. It takes a minute."},
            "action": {
                "name": "flow",
                "parameters": {
                    "flow_message_version": "3",
                    "flow_token": issue_token(
                        conversation_id, settings.app_secrets, settings.ttl_seconds
                    ),
                    "flow_id": settings.flow_id,
                    "flow_cta": FLOW_CTA,
                    "flow_action": "navigate",
                    "flow_action_payload": {"screen": first["screen"], "data": first["data"]},
                },
            },
        },
    }
