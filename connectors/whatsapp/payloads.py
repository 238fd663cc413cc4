"""Meta's messages webhook payload, parsed once into small typed objects.

Nothing past this module digs through `entry[].changes[].value` again. Every message of a
batched notification becomes one InboundMessage; every status one StatusUpdate. Unknown
message types are kept (kind "unsupported") so the customer still gets an answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.edge.json_body import parse_json
from connectors.whatsapp.cart import catalog_order

logger = logging.getLogger(__name__)


class PayloadError(ValueError):
    """The notification is not the shape Meta sends."""


@dataclass(frozen=True)
class Customer:
    """Who wrote: the phone-number id (`wa_id`) and/or the business-scoped user id."""

    wa_id: str | None
    user_id: str | None
    profile_name: str | None = None

    @property
    def key(self) -> str:
        """The stable conversation key: the business-scoped id when Meta gives one."""
        key = self.user_id or self.wa_id
        if not key:
            raise PayloadError("message without a sender id")
        return key

    @property
    def uses_user_id(self) -> bool:
        return self.user_id is not None and self.key == self.user_id


@dataclass(frozen=True)
class InboundMessage:
    """One customer message, reduced to what the bot needs."""

    id: str
    customer: Customer
    timestamp: int
    # text, button_reply, list_reply, nfm_reply, button, location, media, order, unsupported
    kind: str
    text: str = ""
    payload: str | None = None  # button/list reply id, template button payload
    flow_response: dict[str, Any] | None = None  # nfm_reply's response_json
    media_id: str | None = None
    media_type: str | None = None
    location: dict[str, Any] | None = None
    context_id: str | None = None  # the message this one replies to
    raw_type: str = ""
    order: dict[str, Any] | None = None  # a catalog cart, as `catalog_order` reads it


@dataclass(frozen=True)
class StatusUpdate:
    """Delivery status of a message we sent."""

    message_id: str
    status: str  # sent, delivered, read, failed
    recipient: str | None
    timestamp: int
    error_code: int | None = None
    error_title: str | None = None


@dataclass(frozen=True)
class Notification:
    """Everything one webhook POST carried."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)


MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _customers(value: dict[str, Any]) -> dict[str, Customer]:
    """Contacts by every id they can be referred to with."""
    found: dict[str, Customer] = {}
    for contact in _list(value.get("contacts")):
        contact = _dict(contact)
        customer = Customer(
            wa_id=_str(contact.get("wa_id")),
            user_id=_str(contact.get("user_id")),
            profile_name=_str(_dict(contact.get("profile")).get("name")),
        )
        for key in (customer.wa_id, customer.user_id):
            if key:
                found[key] = customer
    return found


def _sender(message: dict[str, Any], contacts: dict[str, Customer]) -> Customer:
    wa_id = _str(message.get("from"))
    user_id = _str(message.get("from_user_id"))
    for key in (user_id, wa_id):
        if key and key in contacts:
            known = contacts[key]
            return Customer(known.wa_id or wa_id, known.user_id or user_id, known.profile_name)
    if len(contacts) == 1 and not (wa_id or user_id):
        return next(iter(contacts.values()))
    if not (wa_id or user_id):
        raise PayloadError("message without a sender id")
    return Customer(wa_id, user_id)


def _flow_response(raw: Any) -> dict[str, Any]:
    try:
        parsed = parse_json(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def parse_message(message: dict[str, Any], contacts: dict[str, Customer]) -> InboundMessage:
    """One entry of `value.messages`."""
    message_id = _str(message.get("id"))
    if not message_id:
        raise PayloadError("message without an id")
    kind = str(message.get("type") or "")
    base: dict[str, Any] = {
        "id": message_id,
        "customer": _sender(message, contacts),
        "timestamp": _int(message.get("timestamp")),
        "context_id": _str(_dict(message.get("context")).get("id")),
        "raw_type": kind,
    }
    if kind == "text":
        return InboundMessage(
            kind="text", text=str(_dict(message.get("text")).get("body") or ""), **base
        )
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        sub = str(interactive.get("type") or "")
        if sub in ("button_reply", "list_reply"):
            reply = _dict(interactive.get(sub))
            return InboundMessage(
                kind=sub, text=str(reply.get("title") or ""), payload=_str(reply.get("id")), **base
            )
        if sub == "nfm_reply":
            reply = _dict(interactive.get("nfm_reply"))
            return InboundMessage(
                kind="nfm_reply",
                text=str(reply.get("body") or ""),
                flow_response=_flow_response(reply.get("response_json")),
                **base,
            )
    if kind == "button":
        button = _dict(message.get("button"))
        return InboundMessage(
            kind="button",
            text=str(button.get("text") or ""),
            payload=_str(button.get("payload")),
            **base,
        )
    if kind == "location":
        location = _dict(message.get("location"))
        return InboundMessage(kind="location", location=location, **base)
    if kind == "order":
        order = catalog_order(message.get("order"))
        return InboundMessage(kind="order", text=order["text"], order=order, **base)
    if kind in MEDIA_TYPES:
        media = _dict(message.get(kind))
        return InboundMessage(
            kind="media",
            text=str(media.get("caption") or ""),
            media_id=_str(media.get("id")),
            media_type=kind,
            **base,
        )
    return InboundMessage(kind="unsupported", **base)


def parse_status(status: dict[str, Any]) -> StatusUpdate:
    message_id = _str(status.get("id"))
    if not message_id:
        raise PayloadError("status without a message id")
    errors = [_dict(e) for e in _list(status.get("errors"))]
    first = errors[0] if errors else {}
    return StatusUpdate(
        message_id=message_id,
        status=str(status.get("status") or ""),
        recipient=_str(status.get("recipient_id")) or _str(status.get("recipient_user_id")),
        timestamp=_int(status.get("timestamp")),
        error_code=_int(first.get("code")) if first.get("code") is not None else None,
        error_title=_str(first.get("title")),
    )


def parse_notification(document: Any) -> Notification:
    """All messages and statuses of one webhook POST; PayloadError when it is not Meta's shape."""
    if not isinstance(document, dict) or not isinstance(document.get("entry"), list):
        raise PayloadError("expected an object with an 'entry' list")
    notification = Notification()
    for entry in document["entry"]:
        for change in _list(_dict(entry).get("changes")):
            value = _dict(_dict(change).get("value"))
            contacts = _customers(value)
            for message in _list(value.get("messages")):
                try:
                    notification.messages.append(parse_message(_dict(message), contacts))
                except PayloadError as error:
                    # One malformed message must not drop the rest of the batch.
                    logger.warning("message skipped: %s", error)
            for status in _list(value.get("statuses")):
                try:
                    notification.statuses.append(parse_status(_dict(status)))
                except PayloadError as error:
                    logger.warning("status skipped: %s", error)
    return notification


def message_to_json(message: InboundMessage) -> str:
    """The message as stored for replay after a crash."""
    return json.dumps(asdict(message), separators=(",", ":"))


def message_from_json(text: str) -> InboundMessage:
    """The message stored by message_to_json."""
    data = json.loads(text)
    data["customer"] = Customer(**data["customer"])
    return InboundMessage(**data)


def readable(message: InboundMessage) -> dict[str, Any]:
    """What a person can read of a message (forwarded to the shop during a hand-over): its
    kind, its text (a caption, a button's title), a location's coordinates; a photo or
    voice note is named, not fetched (its media id is of no use outside the Graph API)."""
    content: dict[str, Any] = {
        "kind": message.media_type or message.kind,
        "sent_at": message.timestamp,
    }
    if message.text:
        content["text"] = message.text
    if message.order:
        content["items"] = [
            {"retailer_id": item["retailer_id"], "quantity": item["quantity"]}
            for item in message.order["items"]
        ]
    if message.location:
        content["location"] = {
            key: message.location[key]
            for key in ("latitude", "longitude", "name", "address")
            if key in message.location
        }
    return content
