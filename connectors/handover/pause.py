"""The bot paused for a customer handed over to a person, and given back afterwards.

While a customer's hand-over is open, their messages are still verified, recorded and
de-duplicated by the messages webhook, but not handed to Rasa: `intercept` forwards each to
the shop instead. Turns the connector starts (Stripe events, Flow traffic) are not paused:
payments keep working and their messages reach the customer.

A hand-over ends by staff (operator API, `make chat ARGS=resume`) or when nobody from the
shop wrote for HANDOVER_TIMEOUT_MINUTES, noticed at the customer's next message or by the
sweep. The conversation is then handed back to the bot through Rasa's external-event path,
as Stripe events are: `EXTERNAL_handover_ended` runs the action that clears the `handover`
slot and tells the customer, its message queued in the outbox under the hand-over's key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel

from connectors.handover.desk import HandoverDesk, HandoverError
from connectors.jobs.customer_queue import CustomerQueues
from connectors.log_refs import customer_ref
from connectors.rasa_patches.action_failures import watch_actions
from connectors.storage.handovers import Handover
from connectors.stripe.events import EventIntent
from connectors.stripe.webhook import trigger_external
from shop_contract.custom_messages import (
    HANDOVER_PAUSED_TEXT,
    HANDOVER_REASON,
    HANDOVER_TRANSCRIPT,
    HANDOVER_UNAVAILABLE_TEXT,
)
from shop_contract.entities import ENDED_BY_STAFF, ENDED_BY_TIMEOUT, HANDOVER_ENDED_BY
from shop_contract.intents import HANDOVER_ENDED

logger = logging.getLogger(__name__)


class HandoverPause:
    """Pauses the bot per customer, forwards their messages, and hands conversations back."""

    def __init__(
        self,
        desk: HandoverDesk,
        queues: CustomerQueues,
        notification_output: Callable[[str], OutputChannel],
        outbox_wake: asyncio.Event,
        flush_outbox: Callable[[], Awaitable[None]],
        lease_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self.desk = desk
        self.store = desk.store
        self.queues = queues
        self.notification_output = notification_output
        self.outbox_wake = outbox_wake
        self.flush_outbox = flush_outbox
        self.timeout_seconds = desk.settings.timeout_minutes * 60
        self.lease_seconds = lease_seconds
        self.sweep_seconds = sweep_seconds
        self.agent: Any = None  # Rasa's agent, once the server has started
        self.handing_back: set[str] = set()  # refs whose hand-back is queued in this process

    async def intercept(self, customer_id: str, message_id: str, content: dict[str, Any]) -> bool:
        """True when the customer's hand-over is open: the message went to the shop and the
        bot stays quiet. A hand-over that timed out, or ended without the bot being told,
        is handed back first (its message before the answer to this one: `flush_outbox`
        wakes the outbox worker and waits, a few seconds at most, for its round)."""
        handover = await asyncio.to_thread(self.store.handovers.current, customer_id)
        if handover is None:
            return False
        if self.pauses(handover):
            await asyncio.to_thread(self.desk.forward, handover, message_id, content)
            self.outbox_wake.set()
            logger.info("hand-over %s: customer message forwarded", handover.ref)
            return True
        ref = handover.ref  # logs name the reference, never the Handover (it holds the id)
        try:
            if handover.is_open:
                try:
                    handover = await asyncio.to_thread(
                        self.desk.end, handover.ref, ENDED_BY_TIMEOUT
                    )
                except HandoverError:  # ended by staff meanwhile
                    handover = await asyncio.to_thread(self.store.handovers.find, handover.ref)
            if handover is not None and await self.hand_back(handover):
                await self.flush_outbox()
        except Exception:
            logger.exception("hand-over %s: hand-back failed; the sweep retries", ref)
        return False

    async def person_has(self, customer_id: str) -> bool:
        """Whether a person has the customer's conversation now (their messages go to the
        shop): what silences the bot's automatic nudges."""
        handover = await asyncio.to_thread(self.store.handovers.current, customer_id)
        return handover is not None and self.pauses(handover)

    def pauses(self, handover: Handover) -> bool:
        """The hand-over is open and someone from the shop wrote within the timeout."""
        return handover.is_open and time.time() - handover.quiet_since < self.timeout_seconds

    async def is_paused(self, customer_id: str) -> bool:
        """True while the bot is paused for the customer (see `pauses`)."""
        handover = await asyncio.to_thread(self.store.handovers.current, customer_id)
        return handover is not None and self.pauses(handover)

    async def start(
        self, customer_id: str, request: dict[str, Any], send_text: Callable[[str], Awaitable[Any]]
    ) -> None:
        """The bot's hand-over turn is saved: opens the hand-over, the shop's notices and the
        customer's "a person will answer" queued with it (connectors/handover/desk.py); when
        nobody can be told, tells the customer how to reach the shop instead."""
        transcript = request.get(HANDOVER_TRANSCRIPT)
        handover = await asyncio.to_thread(
            self.desk.start,
            customer_id,
            str(request.get(HANDOVER_REASON) or "asked")[:32],
            [str(text) for text in transcript] if isinstance(transcript, list) else [],
            str(request.get(HANDOVER_PAUSED_TEXT) or ""),
        )
        if handover is None:
            await send_text(str(request.get(HANDOVER_UNAVAILABLE_TEXT) or ""))
        else:
            self.outbox_wake.set()

    async def end(self, ref: str) -> Handover:
        """Staff end the hand-over `ref` (HandoverError when it is not open); the bot gets
        the conversation back in the customer's order of work."""
        handover = await asyncio.to_thread(self.desk.end, ref, ENDED_BY_STAFF)
        self.outbox_wake.set()
        self.schedule_hand_back(handover)
        return handover

    def schedule_hand_back(self, handover: Handover) -> None:
        """Hands the conversation back after the customer's queued work (once per process)."""
        if handover.ref in self.handing_back:
            return
        self.handing_back.add(handover.ref)

        async def job() -> None:
            try:
                await self.hand_back(handover)
            finally:
                self.handing_back.discard(handover.ref)

        self.queues.submit(handover.customer_id, job, f"hand-back of {handover.ref}")

    async def hand_back(self, handover: Handover) -> bool:
        """Runs the turn that gives the conversation back to the bot, unless another process
        holds it or it is done; True when it ran. A failed action leaves it to the sweep."""
        if self.agent is None:
            return False
        if not await asyncio.to_thread(
            self.store.handovers.claim_hand_back, handover.ref, self.lease_seconds
        ):
            return False
        ended_by = handover.ended_by or ENDED_BY_STAFF
        turn = EventIntent(handover.customer_id, HANDOVER_ENDED, {HANDOVER_ENDED_BY: ended_by})
        async with watch_actions():
            output = self.notification_output(f"handover:{handover.ref}:hand-back")
            await trigger_external(self.agent, turn, output)
        await asyncio.to_thread(self.store.handovers.handed_back, handover.ref)
        logger.info(
            "hand-over %s: %s has the bot again", handover.ref, customer_ref(handover.customer_id)
        )
        return True

    async def sweep(self) -> None:
        """Ends hand-overs nobody from the shop wrote in for the timeout, and hands back the
        conversations of ended ones (ended by the command-line tool, or left by a crash)."""
        for ref in await asyncio.to_thread(self.store.handovers.timed_out, self.timeout_seconds):
            try:
                await asyncio.to_thread(self.desk.end, ref, ENDED_BY_TIMEOUT)
            except HandoverError:
                continue  # ended meanwhile
            self.outbox_wake.set()
        for handover in await asyncio.to_thread(
            self.store.handovers.to_hand_back, self.lease_seconds
        ):
            self.schedule_hand_back(handover)

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("hand-over sweep failed; trying again later")
            await asyncio.sleep(self.sweep_seconds)
