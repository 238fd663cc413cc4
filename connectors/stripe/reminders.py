"""The checkout reminder sweep: a payment link expires soon, so the customer's bot is told.

It lives with the Stripe edge because it triggers its turn the way a Stripe event does
(`trigger_external`), into the customer's order of work (connectors/jobs/customer_queue.py).

Each reminder is due some minutes before its link expires (connectors/storage/reminders.py).
The sweep of every replica, at start-up and then every interval, claims the due ones under
a lease (one replica runs each) and queues each in its customer's order of work, where it
triggers `EXTERNAL_checkout_reminder` with the order and the session. The action decides
whether anything is said (actions/reminder_actions.py); the turn's messages go through the
outbox keyed by the order, so a crash and a replay, or two replicas, remind at most once.
Once the turn ran, the reminder is done; a failed action leaves it to a later sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel

from connectors.jobs.customer_queue import CustomerQueues
from connectors.log_refs import customer_ref
from connectors.rasa_patches.action_failures import watch_actions
from connectors.storage.reminders import Reminder
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.webhook import PersonHas, noting_handover, trigger_external
from shop_contract.entities import CHECKOUT_SESSION_ID, ORDER_ID
from shop_contract.intents import CHECKOUT_REMINDER

logger = logging.getLogger(__name__)


def outbox_origin(reminder: Reminder) -> str:
    """The outbox key of the reminder's messages: one reminder per customer and order."""
    return f"reminder:{customer_ref(reminder.customer_id)}:{reminder.order_id}"


class ReminderSweep:
    """Runs due checkout reminders; remembers what it queued, so nothing is queued twice
    in this process while it waits for its customer's earlier work."""

    def __init__(
        self,
        store: ConnectorStore,
        queues: CustomerQueues,
        notification_output: Callable[[str], OutputChannel],
        lease_seconds: float,
        interval_seconds: float,
        person_has: PersonHas | None = None,
    ) -> None:
        self.person_has = person_has
        self.store = store
        self.queues = queues
        self.notification_output = notification_output
        self.lease_seconds = lease_seconds
        self.interval_seconds = interval_seconds
        self.agent: Any = None  # Rasa's agent, set once the server runs
        self.queued: set[str] = set()

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("checkout reminder sweep failed; trying again later")
            await asyncio.sleep(self.interval_seconds)

    async def sweep(self) -> int:
        """Queues the due reminders this process claims; returns how many."""
        if self.agent is None:
            return 0
        queued = 0
        for reminder in await asyncio.to_thread(self.store.reminders.due, self.lease_seconds):
            if reminder.reminder_id in self.queued:
                continue
            if not await asyncio.to_thread(
                self.store.reminders.claim, reminder.reminder_id, self.lease_seconds
            ):
                continue  # another replica runs it
            self.queued.add(reminder.reminder_id)
            self.queues.submit(
                reminder.customer_id, self._job(reminder), f"reminder {reminder.reminder_id}"
            )
            queued += 1
        return queued

    def _job(self, reminder: Reminder) -> Callable[[], Any]:
        async def job() -> None:
            try:
                await self.remind(reminder)
            finally:
                self.queued.discard(reminder.reminder_id)

        return job

    async def remind(self, reminder: Reminder) -> None:
        """Runs the reminder's turn, then records it done."""
        turn = EventIntent(
            reminder.customer_id,
            CHECKOUT_REMINDER,
            {ORDER_ID: reminder.order_id, CHECKOUT_SESSION_ID: reminder.checkout_session_id},
        )
        turn = await noting_handover(self.person_has, turn)
        async with watch_actions():
            await trigger_external(
                self.agent, turn, self.notification_output(outbox_origin(reminder))
            )
        await asyncio.to_thread(self.store.reminders.done, reminder)
        logger.info(
            "checkout reminder turn ran: order=%s customer=%s",
            reminder.order_id,
            customer_ref(reminder.customer_id),
        )
