"""What a hand-over sends, as outbox entries: the shop's webhook events, the staff alert, the
staff's replies to the customer. Pure functions; connectors/handover/desk.py queues them.

Each entry's outbox key names the hand-over and what the entry is, so queuing it again
(a replayed message, a second replica, a retried command) queues nothing twice; the
webhook event carries that key as its `id`, for receivers to drop a re-delivery (its outbox
key has the SIDE_QUEUE prefix: the shop's events queue apart from the customer's messages).
"""

from __future__ import annotations

import time
from typing import Any

from connectors.storage.handovers import Handover
from connectors.storage.outbox import SIDE_QUEUE
from connectors.storage.sealing import digest

# Outbox bodies that are not Graph API messages (connectors/handover/delivery.py sends them).
SHOP_WEBHOOK = "handover_webhook"  # {"type", "event"}: POSTed to HANDOVER_WEBHOOK_URL
STAFF_ALERT = "handover_staff"  # {"type", "text": {"body"}}: WhatsApp to HANDOVER_STAFF_WA_ID

STARTED = "handover.started"
MESSAGE = "handover.message"
ENDED = "handover.ended"
OPERATOR_PATH = "/webhooks/whatsapp/operator/handovers"


def key(handover: Handover, what: str) -> str:
    """The outbox key of one thing a hand-over sends."""
    return f"handover:{handover.ref}:{what}"


def _event(handover: Handover, what: str, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """A webhook event and its outbox key: in the customer's second queue (a failing
    receiver must not hold up the customer's messages), its `id` the key without that."""
    return SIDE_QUEUE + key(handover, what), {
        "type": SHOP_WEBHOOK,
        "event": {
            "id": key(handover, what),
            "type": kind,
            "created": int(time.time()),
            "handover": {
                "ref": handover.ref,
                "reason": handover.reason,
                "opened_at": handover.opened_at,
            },
            **fields,
        },
    }


def started(handover: Handover, transcript: list[str]) -> tuple[str, dict[str, Any]]:
    """The shop is told once that a customer waits: why, what they wrote last, and where
    to answer (the operator API's paths on this server)."""
    links = {
        "reply": f"{OPERATOR_PATH}/{handover.ref}/reply",
        "resume": f"{OPERATOR_PATH}/{handover.ref}/resume",
    }
    return _event(handover, "started", STARTED, transcript=transcript, links=links)


def forwarded(
    handover: Handover, message_id: str, content: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A message the customer wrote during the hand-over (`content`: its kind and what can
    be read of it), once per WhatsApp message id."""
    what = f"message:{digest(message_id)[:16]}"
    return _event(handover, what, MESSAGE, message=content)


def ended(handover: Handover, ended_by: str) -> tuple[str, dict[str, Any]]:
    return _event(handover, "ended", ENDED, ended_by=ended_by)


def staff_alert(handover: Handover) -> tuple[str, dict[str, Any]]:
    """The WhatsApp message to the shop's staff number: the reference to answer with, and
    nothing that identifies the customer."""
    text = (
        f"A customer is waiting for a person (reason: {handover.reason.replace('_', ' ')}). "
        f'Reference {handover.ref}: answer with make chat ARGS="reply {handover.ref} …" or '
        f"the operator API; hand the customer back to the bot with resume."
    )
    return key(handover, "staff"), {"type": STAFF_ALERT, "text": {"body": text}}


def paused(handover: Handover, text: str) -> tuple[str, dict[str, Any]]:
    """The customer is told that a person will answer (queued with the hand-over's opening)."""
    return key(handover, "paused"), {"type": "text", "text": {"body": text}}


def staff_reply(handover: Handover, reply_key: str, text: str) -> tuple[str, dict[str, Any]]:
    """A reply from the shop to the customer, a plain WhatsApp text (the outbox sends the
    template instead when the customer's 24-hour window has closed)."""
    return key(handover, f"reply:{reply_key}"), {"type": "text", "text": {"body": text}}
