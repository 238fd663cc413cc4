"""Turning customer messages into Rasa input, and keeping reserved intents out of reach.

Rasa parses text that starts with '/' as an intent (`/intent{"entity": …}`). Customers
must never be able to produce an intent that way: their text is stripped of leading
slashes, and button payloads (which we set and WhatsApp echoes back) may only name the
intents a customer can express anyway: never a reserved intent — Stripe events and Flow
traffic, built here by the connector alone — nor one of Rasa's own (`/restart`,
`/session_start`, …), which would reset or replay the conversation.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.shared.core.constants import DEFAULT_INTENTS

from connectors.edge.intent_text import INTENT_PREFIX, intent_message
from connectors.edge.json_body import parse_json
from connectors.whatsapp.payloads import InboundMessage
from shop_contract.entities import (
    CATALOG_ID,
    CATALOG_ITEM,
    CONNECTOR_ONLY_ENTITIES,
    FLOW_DATA,
    FLOW_TOKEN,
)
from shop_contract.intents import (
    CATALOG_ORDER,
    FLOW_COMPLETED,
    RESERVED_PREFIXES,
    UNREADABLE_MESSAGE,
)

_PAYLOAD_INTENT = re.compile(r"^/(?P<intent>[A-Za-z0-9_]+)(?P<entities>\{.*\})?$", re.DOTALL)


def is_reserved(intent: str) -> bool:
    return intent.startswith(RESERVED_PREFIXES)


_UNTAPPABLE_PREFIXES = tuple(prefix.casefold() for prefix in RESERVED_PREFIXES)


def customer_may_send(intent: str) -> bool:
    """False for reserved intents and Rasa's default intents, whatever their case."""
    name = intent.casefold()
    return not name.startswith(_UNTAPPABLE_PREFIXES) and name not in DEFAULT_INTENTS


_LEADING_SLASHES = re.compile(r"^[\s/]+")


def safe_text(text: str) -> str:
    """Customer text that Rasa will run through NLU, never parse as an intent.

    Rasa strips every kind of whitespace before looking for '/', so leading slashes are
    removed together with any whitespace (no-break and ideographic spaces included).
    """
    return _LEADING_SLASHES.sub("", text).strip()


def payload_text(payload: str | None, title: str) -> str:
    """A reply button's id as Rasa input: the intent we put there, unless a customer may
    not send it (customer_may_send); then the button's title, as text. Entities only the
    connector sets (an order id, a recovery URL, a Stripe event…) are dropped from it: the
    actions trust those as the connector's."""
    if payload:
        match = _PAYLOAD_INTENT.match(payload.strip())
        if match and customer_may_send(match.group("intent")):
            if match.group("entities") is None:
                return payload.strip()
            try:
                entities = parse_json(match.group("entities"))
            except ValueError:
                return safe_text(title)
            if not isinstance(entities, dict):
                return safe_text(title)
            kept = {k: v for k, v in entities.items() if k not in CONNECTOR_ONLY_ENTITIES}
            if len(kept) < len(entities):
                return intent_message(match.group("intent"), kept)
            return payload.strip()
        if not payload.startswith(INTENT_PREFIX):
            return safe_text(payload)
    return safe_text(title)


def rasa_text(message: InboundMessage) -> str:
    """The text handed to Rasa for one inbound message (nfm_reply is handled separately)."""
    if message.kind == "text":
        return safe_text(message.text) or intent_message(UNREADABLE_MESSAGE)
    if message.kind in ("button_reply", "list_reply", "button"):
        return payload_text(message.payload, message.text)
    if message.kind == "media" and message.text.strip():
        return safe_text(message.text)
    if message.kind == "order" and message.order is not None:
        return catalog_order_text(message.order)
    if message.kind == "location":
        location = message.location or {}
        words = " ".join(str(location.get(k) or "") for k in ("name", "address")).strip()
        return safe_text(words) or intent_message(UNREADABLE_MESSAGE)
    return intent_message(UNREADABLE_MESSAGE)


def completion_token(response: dict[str, Any]) -> str | None:
    """The flow token of a completion; `flow_ref` stands in where WhatsApp dropped it."""
    for key in ("flow_token", "flow_ref"):
        if isinstance(response.get(key), str) and response[key]:
            return str(response[key])
    return None


def is_order_completion(response: dict[str, Any]) -> bool:
    """A completion that carries an order: the cart (or, from a Flow sent before the cart,
    its one product); not the 'continue in the chat' hand-over."""
    return "cart" in response or "product" in response


def flow_completed_text(response: dict[str, Any]) -> str:
    """The Flow's completion as the reserved intent with its parameters as entities."""
    data = {k: v for k, v in response.items() if k != "flow_token"}
    entities: dict[str, Any] = {FLOW_DATA: data}
    token = completion_token(response)
    if token:
        entities[FLOW_TOKEN] = token
    return intent_message(FLOW_COMPLETED, entities)


def catalog_order_text(order: dict[str, Any]) -> str:
    """A cart as the reserved intent: its catalog id and one entity per item. The customer's
    note (`order.text`) stays out: it is free text, and only the items make the order."""
    return intent_message(
        CATALOG_ORDER, {CATALOG_ID: order["catalog_id"], CATALOG_ITEM: list(order["items"])}
    )


def message_metadata(message: InboundMessage) -> dict[str, Any]:
    """What the tracker keeps about the message besides its text: only what the bot uses or
    an operator needs to trace a turn (not the WhatsApp profile name, for one)."""
    metadata: dict[str, Any] = {
        "message_id": message.id,
        "timestamp": message.timestamp,
        "message_type": message.raw_type,
    }
    if message.context_id:
        metadata["reply_to"] = message.context_id
    if message.media_id:
        metadata["media"] = {"id": message.media_id, "type": message.media_type}
    if message.location:
        metadata["location"] = message.location
    return metadata
