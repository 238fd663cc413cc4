"""The hand-over's bookkeeping, shared by the Rasa server and the command-line tool: open a
hand-over and tell the shop, forward a customer's message, send a staff reply, end it.

Everything here is a database write: the rows in `handovers` and the outbox entries that
carry the shop's webhook events, the staff alert and the replies (sent by the outbox worker
of a running Rasa server, with retries). Synchronous; the server calls it in a thread.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection

from connectors.handover import notices
from connectors.settings import HandoverSettings
from connectors.storage.handovers import ENDED, Handover
from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)

REF_PATTERN = re.compile(r"H-[0-9A-Z]{8}")
MAX_REPLY_CHARACTERS = 4096  # WhatsApp's limit for one text message


class HandoverError(Exception):
    """A staff request that cannot be done; the message says why, naming the reference."""


class UnknownHandover(HandoverError):
    pass


class HandoverEnded(HandoverError):
    pass


class ReplyKeyReused(HandoverError):
    """A reply key (Idempotency-Key) already queued another text: not a retry."""


class HandoverDesk:
    """Opens, forwards to, answers and ends hand-overs."""

    def __init__(self, store: ConnectorStore, settings: HandoverSettings) -> None:
        self.store = store
        self.settings = settings

    def start(
        self, customer_id: str, reason: str, transcript: list[str], paused_text: str
    ) -> Handover | None:
        """The customer's open hand-over (opened now unless there is one); None without the
        shop's webhook (nobody would read the customer's messages): no hand-over then.

        A new hand-over is written in one transaction with everything that tells of it (the
        `handover.started` event, the staff alert, `paused_text` to the customer): a crash or
        a database error leaves either all of them queued or no hand-over, and the replayed
        turn then opens it. An open one found instead was told of when it was opened."""
        if not self.settings.notifies:
            return None

        def tell(connection: Connection, handover: Handover) -> None:
            opening = [notices.started(handover, transcript)]
            if self.settings.staff_wa_id:
                opening.append(notices.staff_alert(handover))
            if paused_text:
                opening.append(notices.paused(handover, paused_text))
            for key, body in opening:
                self.store.outbox.enqueue(key, customer_id, json.dumps(body), connection)

        handover, fresh = self.store.handovers.open(customer_id, reason, tell)
        if fresh:
            logger.info("hand-over %s opened (%s)", handover.ref, reason)
        return handover

    def forward(self, handover: Handover, message_id: str, content: dict[str, Any]) -> None:
        """Queues a message the customer wrote during the hand-over for the shop's webhook
        (once per message id)."""
        self._queue(handover, *notices.forwarded(handover, message_id, content))

    def open_handover(self, ref: str) -> Handover:
        """The open hand-over `ref`; UnknownHandover or HandoverEnded otherwise."""
        handover = self.store.handovers.find(ref) if REF_PATTERN.fullmatch(ref) else None
        if handover is None:
            raise UnknownHandover(f"no hand-over {ref}")
        if not handover.is_open:
            raise HandoverEnded(f"hand-over {ref} has ended: the bot answers this customer again")
        return handover

    def reply(self, ref: str, text: str, reply_key: str | None = None) -> Handover:
        """Queues a staff reply to the customer of the open hand-over `ref`. `reply_key`
        (e.g. the API caller's Idempotency-Key) makes a retried request queue it once;
        ReplyKeyReused when the key queued a different text (a mistake, not a retry)."""
        handover = self.open_handover(ref)
        key, body = notices.staff_reply(handover, reply_key or secrets.token_hex(8), text)
        if not self.store.outbox.enqueue(key, handover.customer_id, json.dumps(body)):
            if json.loads(self.store.outbox.queued_body(key) or "null") != body:
                raise ReplyKeyReused(
                    f"Idempotency-Key {reply_key} was used for another text in hand-over {ref}: "
                    "a new reply needs a new key"
                )
            logger.info("%s was queued before; not again", key)
        self.store.handovers.staff_replied(ref)
        logger.info("hand-over %s: staff reply queued", ref)
        return handover

    def end(self, ref: str, ended_by: str) -> Handover:
        """Ends the open hand-over `ref` and tells the shop's webhook; the running server
        then hands the conversation back to the bot (connectors/handover/pause.py)."""
        handover = self.open_handover(ref)
        if not self.store.handovers.end(ref, ended_by):
            raise HandoverEnded(f"hand-over {ref} has ended: the bot answers this customer again")
        if self.settings.webhook_url:
            self._queue(handover, *notices.ended(handover, ended_by))
        logger.info("hand-over %s ended by %s", ref, ended_by)
        return replace(handover, status=ENDED, ended_at=time.time(), ended_by=ended_by)

    def _queue(self, handover: Handover, key: str, body: dict[str, Any]) -> None:
        if not self.store.outbox.enqueue(key, handover.customer_id, json.dumps(body)):
            logger.info("%s was queued before; not again", key)
