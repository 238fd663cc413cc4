"""Meta's messages webhook: POST /webhooks/whatsapp/webhook (customers' messages and
delivery statuses; the GET handshake is in ops_routes.py).

A POST is verified over its raw bytes, its message ids are recorded (Meta re-delivers), and
it is answered at once; the messages are handled in the background, in order per customer,
each held under its claim until it is processed (the recovery sweep replays it otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.intent_text import intent_message
from connectors.edge.json_body import parse_json
from connectors.edge.signatures import verify_hub_signature
from connectors.handover.pause import HandoverPause
from connectors.jobs.customer_queue import CustomerQueues
from connectors.jobs.leases import Hold
from connectors.jobs.recovery import Replayable
from connectors.log_refs import customer_ref, message_ref
from connectors.settings import WhatsAppSettings
from connectors.storage.leases import new_claim
from connectors.storage.schema import inbound_messages
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.erasure import Erasure
from connectors.whatsapp.flow_replies import complete, completion_input
from connectors.whatsapp.graph import GraphApiError, GraphClient
from connectors.whatsapp.intents import (
    message_metadata,
    rasa_text,
)
from connectors.whatsapp.output import CHANNEL_NAME, Outputs, WhatsAppOutput
from connectors.whatsapp.payloads import (
    InboundMessage,
    PayloadError,
    message_from_json,
    message_to_json,
    parse_notification,
    readable,
)
from connectors.whatsapp.statuses import DeliveryStatuses
from shop_contract.intents import CATALOG_ORDER, UNREADABLE_MESSAGE

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class MessagesWebhook:
    """Receives Meta's notifications and runs each customer message through Rasa."""

    def __init__(
        self,
        settings: WhatsAppSettings,
        store: ConnectorStore,
        graph: GraphClient,
        queues: CustomerQueues,
        outputs: Outputs,
        hold: Hold,
        statuses: DeliveryStatuses,
        erasure: Erasure,
        handover: HandoverPause,
    ) -> None:
        self.settings = settings
        self.store = store
        self.graph = graph
        self.queues = queues
        self.outputs = outputs
        self.hold = hold
        self.statuses = statuses
        self.erasure = erasure
        self.handover = handover
        self.agent: Any = None  # Rasa's agent, once the server has started

    async def receive_notification(
        self, request: Request, on_new_message: OnNewMessage
    ) -> HTTPResponse:
        body = request.body or b""
        if len(body) > MAX_BODY_BYTES:
            return response.json({"error": "body too large"}, status=413)
        signature = request.headers.get("X-Hub-Signature-256")
        if not signature:
            logger.warning("webhook without signature refused")
            return response.json({"error": "missing X-Hub-Signature-256"}, status=401)
        if not verify_hub_signature(body, signature, self.settings.app_secrets):
            logger.warning("webhook with a wrong signature refused")
            return response.json({"error": "invalid signature"}, status=403)
        try:
            notification = parse_notification(parse_json(body))
        except (ValueError, PayloadError) as error:
            logger.warning("webhook body refused: %s", type(error).__name__)
            return response.json({"error": "not a WhatsApp notification"}, status=400)
        fresh: list[tuple[InboundMessage, str]] = []
        try:
            for message in notification.messages:
                claim = new_claim()
                if await asyncio.to_thread(
                    self.store.messages.record_inbound,
                    message.id,
                    message.customer.key,
                    None,
                    message_to_json(message),
                    claim,
                ):
                    fresh.append((message, claim))
                else:
                    logger.info("duplicate delivery ignored: message=%s", message_ref(message.id))
        except Exception:
            logger.exception("could not record the notification; Meta will retry")
            return response.json({"error": "storage unavailable"}, status=503)
        for message, claim in fresh:
            self.queues.submit(
                message.customer.key,
                lambda m=message: self.handle_message(m, on_new_message),  # type: ignore[misc]
                f"message {message_ref(message.id)}",
                self.hold(inbound_messages, message.id, claim),
            )
        for status in notification.statuses:
            self.queues.submit(
                f"status:{status.message_id}",
                lambda s=status: self.statuses.handle_status(s),  # type: ignore[misc]
                f"status of {message_ref(status.message_id)}",
            )
        return response.json({"status": "received"})

    def replayable(self, on_new_message: OnNewMessage) -> Replayable:
        """Recorded messages, for the recovery sweep: each replayed in its customer's order."""

        def reschedule(_: str, payload: str, claim: str, done: Callable[[], None]) -> None:
            message = message_from_json(payload)
            logger.warning(
                "replaying message %s of %s after an interruption",
                message_ref(message.id),
                customer_ref(message.customer.key),
            )
            self.queues.submit(
                message.customer.key,
                lambda: self.replay(message, claim, on_new_message, done),
                f"replayed message {message_ref(message.id)}",
                self.hold(inbound_messages, message.id, claim),
            )

        return Replayable(inbound_messages, "message_id", reschedule)

    async def replay(
        self,
        message: InboundMessage,
        claim: str,
        on_new_message: OnNewMessage,
        done: Callable[[], None],
    ) -> None:
        """Runs a replayed message unless, while it waited, it was finished or taken over."""
        try:
            if await asyncio.to_thread(
                self.store.leases.holds, inbound_messages, message.id, claim
            ):
                await self.handle_message(message, on_new_message)
            else:
                logger.info("replay of message %s skipped: no longer ours", message_ref(message.id))
        finally:
            done()

    async def handle_message(self, message: InboundMessage, on_new_message: OnNewMessage) -> None:
        """One customer message through Rasa, with read receipt and typing indicator; to the
        shop instead while the customer is handed over to a person (no typing then)."""
        customer_id = message.customer.key
        await asyncio.to_thread(
            self.store.messages.touch_customer, customer_id, message.timestamp or time.time()
        )
        paused = message.kind != "nfm_reply" and await self.handover.intercept(
            customer_id, message.id, readable(message)
        )
        with contextlib.suppress(GraphApiError):  # a courtesy; the client logged the failure
            await self.graph.mark_read(message.id, typing_indicator=not paused)
        if paused:
            await asyncio.to_thread(self.store.messages.mark_processed, message.id)
            return
        output = self.outputs.output(notifications=False)
        text, flow_token = await self.text_for(message, output)
        if text is not None:
            turn = UserMessage(
                text=text,
                output_channel=output,
                sender_id=customer_id,
                input_channel=CHANNEL_NAME,
                message_id=message.id,
                metadata=message_metadata(message),
            )
            if flow_token is not None:
                lease = self.settings.replay_lease_seconds
                if not await complete(
                    self.store, lease, message, flow_token, lambda: on_new_message(turn)
                ):
                    return  # left unprocessed: the recovery sweep replays it later
                await self.open_handover(customer_id, output)
            else:
                while not await self.run_turn(turn, on_new_message, output):
                    # Handed over to a person while it waited for its turn: to the shop.
                    if await self.handover.intercept(customer_id, message.id, readable(message)):
                        await asyncio.to_thread(self.store.messages.mark_processed, message.id)
                        return
        if output.erase_request is not None:
            if not await self.erasure.erase(self.agent, customer_id, output.erase_request):
                await asyncio.to_thread(self.store.messages.mark_processed, message.id)  # no replay
            return
        await asyncio.to_thread(self.store.messages.mark_processed, message.id)

    async def run_turn(
        self, turn: UserMessage, on_new_message: OnNewMessage, output: WhatsAppOutput
    ) -> bool:
        """Runs a customer's turn, and opens the hand-over it asked for; False, running
        nothing, when the customer was handed over while the message waited for its turn.

        Rasa runs one turn of a conversation at a time, under its lock store's lock (shared
        by the replicas). The pause is checked, the turn run and its hand-over opened under
        that same lock, taken as Rasa's `Agent.handle_message` takes it: a message that
        reached another replica during a hand-over turn sees the hand-over once it runs."""
        agent = self.agent
        if agent is None or not agent.is_ready():  # before start-up ends; unit tests
            await on_new_message(turn)
            await self.open_handover(turn.sender_id, output)
            return True
        async with agent.lock_store.lock(turn.sender_id):
            if await self.handover.is_paused(turn.sender_id):
                return False
            await agent.processor.handle_message(turn)
            await self.open_handover(turn.sender_id, output)
        return True

    async def open_handover(self, customer_id: str, output: WhatsAppOutput) -> None:
        if output.handover_request is not None:
            await self.handover.start(
                customer_id,
                output.handover_request,
                lambda text: output.send_text_message(customer_id, text),
            )

    async def text_for(
        self, message: InboundMessage, output: WhatsAppOutput
    ) -> tuple[str | None, str | None]:
        """Rasa's input for a message, and the flow token of a Flow completion; no input for
        the 'continue in the chat' hand-over, nor for a completion whose token is refused."""
        if message.kind != "nfm_reply":
            text = rasa_text(message)
            if message.kind == "order" and not self.knows(CATALOG_ORDER):
                text = intent_message(UNREADABLE_MESSAGE)  # a bot that takes no carts
            if text == intent_message(UNREADABLE_MESSAGE) and not self.knows(UNREADABLE_MESSAGE):
                logger.info(
                    "%s message not handed to the bot: its domain has no intent %s",
                    message.raw_type,
                    UNREADABLE_MESSAGE,
                )
                return None, None
            return text, None
        return await completion_input(message, self.store, self.settings.app_secrets, output)

    def knows(self, intent: str) -> bool:
        """Whether the bot's domain has `intent` (True until the agent is loaded).

        Another bot need not declare the intent for messages it cannot read (stickers,
        reactions, …): its NLU would guess an intent from that intent's name instead.
        """
        domain = getattr(self.agent, "domain", None)
        return domain is None or intent in domain.intents
