"""A customer's erasure on their confirmed request, run once the turn that asked is saved.

The erase action only asks (a custom message the output channel keeps aside, with the
texts to send); the channel erases after the turn, because the turn's own save would
otherwise write the conversation back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from connectors.log_refs import customer_ref
from connectors.privacy.rights import erase_customer
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.graph import GraphApiError, GraphClient
from connectors.whatsapp.messages import envelope, is_business_scoped, text_bodies
from connectors.whatsapp.output import Outputs

logger = logging.getLogger(__name__)


class Erasure:
    """Erases a customer and tells them, leaving no record of the last message."""

    def __init__(self, store: ConnectorStore, graph: GraphClient, outputs: Outputs) -> None:
        self.store = store
        self.graph = graph
        self.outputs = outputs

    async def erase(self, agent: Any, customer_id: str, texts: dict[str, str]) -> bool:
        """Erases everything held about the customer, on their confirmed request, and tells
        them; False when it failed. The last message is sent without a record, so that
        nothing of theirs stays.

        The turn that asked for it is saved by now. The conversation's lock (from Rasa's
        `agent`, None before the server has started) keeps any other turn (another replica,
        a Stripe event) from saving the tracker it loaded before the erasure: Rasa's store
        would write every event back into an empty conversation.
        """
        lock = agent.lock_store.lock(customer_id) if agent is not None else contextlib.nullcontext()
        try:
            async with lock:
                counts = await asyncio.to_thread(erase_customer, self.store, customer_id)
        except Exception:
            logger.exception("erasure failed for %s", customer_ref(customer_id))
            await self.outputs.output(notifications=False).send_text_message(
                customer_id, texts.get("failed", "")
            )
            return False
        logger.info(
            "erased on request: %s (%s rows)", customer_ref(customer_id), sum(counts.values())
        )
        for body in text_bodies(texts.get("done", "")):
            request = envelope(customer_id, is_business_scoped(customer_id), body)
            with contextlib.suppress(GraphApiError):  # the client logged the failure
                await self.graph.send_message(request)
        return True
