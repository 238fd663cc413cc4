"""Delivery statuses of the messages we sent, and the fallback for the 24-hour window.

Meta reports each sent message's progress (sent, delivered, read, failed) on the messages
webhook. A notification refused because the customer's 24-hour window had closed (error
131047) is sent again in the form allowed outside the window: the configured template, or
WASender.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from connectors.storage.sealing import digest
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.output import outside_window_body
from connectors.whatsapp.payloads import StatusUpdate

logger = logging.getLogger(__name__)

RE_ENGAGEMENT_ERROR = 131047  # "more than 24 hours since the customer last replied"


class DeliveryStatuses:
    """Records statuses; queues the outside-window fallback of a refused notification."""

    def __init__(self, store: ConnectorStore, outbox_wake: asyncio.Event) -> None:
        self.store = store
        self.outbox_wake = outbox_wake  # set when a fallback is queued

    async def handle_status(self, status: StatusUpdate) -> None:
        """Records a delivery status; a notification that failed for the window is resent."""
        record = await asyncio.to_thread(
            self.store.messages.record_status,
            status.message_id,
            status.status,
            float(status.timestamp or time.time()),
            status.error_code,
            status.error_title,
        )
        if record is None or status.status != "failed":
            return
        logger.warning(
            "message failed: kind=%s code=%s title=%s",
            record.kind,
            status.error_code,
            status.error_title,
        )
        if (
            record.kind == "notification"
            and record.body
            and status.error_code == RE_ENGAGEMENT_ERROR
        ):
            await self.queue_fallback(status.message_id, record.customer_id, record.body)

    async def queue_fallback(self, message_id: str, customer_id: str, text: str) -> None:
        """Queues the outside-window form (template or WASender) of a notification Meta
        refused for the 24-hour window: the outbox retries it, makes it a dead letter or
        'undeliverable', as for any notification. Keyed by the refused message, so it is
        queued once however many times its 'failed' status arrives."""
        key = f"fallback:{digest(message_id)}"
        body = json.dumps(outside_window_body(text))
        if await asyncio.to_thread(self.store.outbox.enqueue, key, customer_id, body):
            self.outbox_wake.set()
