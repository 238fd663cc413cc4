"""The customer's turn for a shipment or delivery: the connector's external-event path
(connectors/stripe/webhook.py `trigger_external`), queued in the customer's order of work
like a Stripe event, its messages through the outbox under the given origin.

The request waits for its turn, at most TOLD_WITHIN_SECONDS, and answers whether the
customer's message was queued ("told": the outbox holds a message under the turn's
origin, and it can reach them: within their 24-hour window, or with a template or WASender
for outside it). A turn that failed or has not run by then is not replayed by itself (it is queued
in memory, not recorded): the operator repeats the request, which the outbox's key makes
safe (the customer is told once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import OutputChannel

from connectors.jobs.customer_queue import CustomerQueues
from connectors.log_refs import customer_ref
from connectors.rasa_patches.action_failures import watch_actions
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.paid_index import reconfirm
from connectors.stripe.webhook import trigger_external

logger = logging.getLogger(__name__)

TOLD_WITHIN_SECONDS = 10.0


@dataclass(frozen=True)
class Told:
    """Whether the customer's turn ran and queued its message; why not, when it did not."""

    told: bool
    reason: str | None = None


class FulfilmentTurns:
    """Queues fulfilment turns; `agent` is Rasa's, set once the server runs."""

    def __init__(
        self,
        queues: CustomerQueues,
        notification_output: Callable[[str], OutputChannel],
        store: ConnectorStore | None = None,
        refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        self.queues = queues
        self.notification_output = notification_output
        self.store = store
        self.refusal = refusal  # why a notification cannot reach the customer now, if not
        self.agent: Any = None

    async def reconfirm(self, customer_id: str, order_id: str) -> bool:
        """Looks once more whether the conversation shows an unconfirmed order paid (its
        paid turn's look may have failed): True when it is confirmed now."""
        agent, store = self.agent, self.store
        if agent is None or store is None:
            return False
        try:
            return await reconfirm(store, agent, customer_id, order_id)
        except Exception as failed:
            logger.warning("order %s not re-checked: %s", order_id, type(failed).__name__)
            return False

    async def trigger(
        self, customer_id: str, intent: str, entities: dict[str, Any], origin: str
    ) -> Told:
        turn = EventIntent(customer_id, intent, entities)
        agent = self.agent
        if agent is None:
            return Told(False, "the bot is not running yet: repeat the request in a moment")
        ran: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            try:
                async with watch_actions():
                    await trigger_external(agent, turn, self.notification_output(origin))
            except Exception as failed:
                if not ran.done():
                    ran.set_exception(failed)
                raise
            if not ran.done():
                ran.set_result(None)
            logger.info(
                "fulfilment turn ran: intent=%s order=%s customer=%s",
                intent,
                entities.get("order_id"),
                customer_ref(customer_id),
            )

        self.queues.submit(customer_id, job, f"{intent} {entities.get('order_id')}")
        try:
            await asyncio.wait_for(asyncio.shield(ran), TOLD_WITHIN_SECONDS)
        except asyncio.TimeoutError:
            return Told(
                False,
                f"the customer's turn has not run within {TOLD_WITHIN_SECONDS:.0f} s (it is "
                "still queued): look again, and repeat the request if they were not told",
            )
        except Exception as failed:  # the turn's own failure, already logged by the queue
            return Told(
                False,
                f"the customer's turn failed ({type(failed).__name__}): repeat the request "
                "once the bot's actions run again; they are told once",
            )
        if self.store is not None and not await asyncio.to_thread(
            self.store.outbox.queued_body, f"{origin}:0"
        ):
            # The action stays silent when the conversation no longer holds the order (or it
            # is refunded in full there): the turn ran, but nobody was told.
            return Told(
                False,
                "the customer's turn ran but sent no message: their conversation no longer "
                "holds this order (or shows it refunded); tell them yourself if needed",
            )
        check = self.refusal
        refusal = None if check is None else await asyncio.to_thread(check, customer_id)
        if refusal:
            # Queued, but the outbox will set it aside: saying "told" would be untrue.
            return Told(
                False,
                f"the customer's message cannot reach them: {refusal}. Tell them another way "
                "(or set the template up); repeating the request will not send it again",
            )
        return Told(True)
