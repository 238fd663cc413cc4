"""The interactive message that opens the order Flow on WhatsApp.

Its first screen's data (the catalog) travels in the message, so opening the Flow needs no
endpoint call. The flow token names the conversation and expires (FLOW_TOKEN_TTL_HOURS,
default 72); the connector's Flow endpoint checks it without a lookup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actions.flow_screens import product_screen
from shop_contract.app_secrets import split_secrets
from shop_contract.catalog import Catalog
from shop_contract.flow_tokens import DEFAULT_TTL_SECONDS, issue_token

FLOW_CTA = "Order now"


@dataclass(frozen=True)
class FlowMessageSettings:
    flow_id: str
    app_secrets: tuple[str, ...]
    ttl_seconds: int = DEFAULT_TTL_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FlowMessageSettings | None:
        """None unless both the Flow id and the app secret are set."""
        flow_id = environ.get("WHATSAPP_FLOW_ID", "").strip()
        app_secrets = split_secrets(environ.get("WHATSAPP_APP_SECRET", ""))
        if not flow_id or not app_secrets:
            return None
        raw_ttl = environ.get("FLOW_TOKEN_TTL_HOURS", "").strip()
        ttl = int(float(raw_ttl) * 3600) if raw_ttl else DEFAULT_TTL_SECONDS
        return cls(flow_id, app_secrets, ttl)


def flow_settings() -> FlowMessageSettings | None:
    return FlowMessageSettings.from_env(os.environ)


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
