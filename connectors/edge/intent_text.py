"""Rasa's text form of an intent: '/intent{"entity": value}'.

Every edge that starts a turn with an intent of its own (a Flow request, a completed Flow,
a message the bot cannot read) writes it this way; connectors/whatsapp/intents.py keeps
customers from writing it themselves.
"""

from __future__ import annotations

import json
from typing import Any

INTENT_PREFIX = "/"


def intent_message(intent: str, entities: dict[str, Any] | None = None) -> str:
    """Rasa's text form of an intent with entities: '/intent{"entity": value}'."""
    if not entities:
        return f"{INTENT_PREFIX}{intent}"
    return f"{INTENT_PREFIX}{intent}{json.dumps(entities, separators=(',', ':'))}"
