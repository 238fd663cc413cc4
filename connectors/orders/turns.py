"""The customer's turn for a shipment or delivery: the connector's external-event path
(connectors/stripe/webhook.py `trigger_external`), queued in the customer's order of work
like a Stripe event, its messages through the outbox under the given origin."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel

from connectors.jobs.customer_queue import CustomerQueues
from connectors.log_refs import customer_ref
from connectors.rasa_patches.action_failures import watch_actions
from connectors.stripe.events import EventIntent
from connectors.stripe.webhook import trigger_external

logger = logging.getLogger(__name__)


class FulfilmentTurns:
    """Queues fulfilment turns; `agent` is Rasa's, set once the server runs."""

    def __init__(
        self, queues: CustomerQueues, notification_output: Callable[[str], OutputChannel]
    ) -> None:
        self.queues = queues
        self.notification_output = notification_output
        self.agent: Any = None

    async def trigger(
        self, customer_id: str, intent: str, entities: dict[str, Any], origin: str
    ) -> None:
        turn = EventIntent(customer_id, intent, entities)
        agent = self.agent

        async def job() -> None:
            async with watch_actions():
                await trigger_external(agent, turn, self.notification_output(origin))
            logger.info(
                "fulfilment turn ran: intent=%s order=%s customer=%s",
                intent,
                entities.get("order_id"),
                customer_ref(customer_id),
            )

        if agent is None:
            raise RuntimeError("the bot is not running yet")
        self.queues.submit(customer_id, job, f"{intent} {entities.get('order_id')}")
