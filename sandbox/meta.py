"""Builders for Meta's webhook notifications, signed as Meta signs them."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from typing import Any

from connectors.edge.signatures import hub_signature

__all__ = ["hub_signature"]

#: The business phone number id of the sandbox and the tests (any digits do).
PHONE_NUMBER_ID = "1234567890"
#: The Meta commerce catalog connected to the sandbox's account (WHATSAPP_CATALOG_ID).
CATALOG_ID = "2000000000000002"

# Ids are unique across runs too: the bot keeps the ids it saw in its database.
_RUN = secrets.token_hex(4)
_ids = itertools.count(1)


def wamid(customer: str, serial: str) -> str:
    """A message id shaped like Meta's: base64 of a record that holds the customer's number
    (or user id) and a serial, so tests show the bot never stores or logs it in clear."""
    record = (
        b"\x1c\x18" + bytes([len(customer)]) + customer.encode() + b"\x15\x02" + serial.encode()
    )
    return "wamid." + base64.b64encode(record).decode()


def message_id(sender: str = "0") -> str:
    return wamid(sender, f"TEST{_RUN}{next(_ids):08d}")


def contact(
    wa_id: str | None = None, user_id: str | None = None, name: str = "Test Customer"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"profile": {"name": name}}
    if wa_id:
        entry["wa_id"] = wa_id
    if user_id:
        entry["user_id"] = user_id
    return entry


def message(sender: str, kind: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One inbound message from `sender` (a phone id, or a user id when it has a dot)."""
    sender_field = "from_user_id" if "." in sender else "from"
    return {
        sender_field: sender,
        "id": extra.pop("id", None) or message_id(sender),
        "timestamp": str(int(extra.pop("timestamp", time.time()))),
        "type": kind,
        kind: content,
        **extra,
    }


def text(sender: str, body: str, **extra: Any) -> dict[str, Any]:
    return message(sender, "text", {"body": body}, **extra)


def button_reply(sender: str, reply_id: str, title: str) -> dict[str, Any]:
    return message(
        sender,
        "interactive",
        {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
    )


def list_reply(sender: str, row_id: str, title: str) -> dict[str, Any]:
    return message(
        sender,
        "interactive",
        {"type": "list_reply", "list_reply": {"id": row_id, "title": title}},
    )


def nfm_reply(sender: str, response: dict[str, Any]) -> dict[str, Any]:
    return message(
        sender,
        "interactive",
        {
            "type": "nfm_reply",
            "nfm_reply": {"name": "flow", "body": "Sent", "response_json": json.dumps(response)},
        },
    )


def cart_item(
    retailer_id: str, quantity: int, item_price: float, currency: str = "EUR"
) -> dict[str, Any]:
    """One `product_items` entry of a cart: what the customer's WhatsApp shows and sends."""
    return {
        "product_retailer_id": retailer_id,
        "quantity": quantity,
        "item_price": item_price,
        "currency": currency,
    }


def order(
    sender: str, items: list[dict[str, Any]], catalog_id: str = CATALOG_ID, text: str = ""
) -> dict[str, Any]:
    """The customer sends their cart (`type: order`), as WhatsApp does from a catalog,
    product or multi-product message; `text` is the note they may add."""
    content: dict[str, Any] = {"catalog_id": catalog_id, "product_items": items}
    if text:
        content["text"] = text
    return message(sender, "order", content)


def notification(
    messages: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    phone_number_id: str | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550000000",
            "phone_number_id": phone_number_id or PHONE_NUMBER_ID,
        },
    }
    if messages is not None:
        value["messages"] = messages
        value["contacts"] = contacts or []
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": value}]}],
    }


def status(message_id_: str, state: str, recipient: str, code: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": message_id_,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if code is not None:
        entry["errors"] = [{"code": code, "title": "Re-engagement message"}]
    return entry


def signed(document: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Meta would POST."""
    body = json.dumps(document).encode("utf-8")
    return body, {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": hub_signature(body, secret),
    }
