"""The WhatsApp Flows data endpoint: POST /webhooks/whatsapp/flow.

Order of checks, each with its own status code: signature over the raw body (432), then
decryption (421, empty body), then the flow token (427, encrypted error_msg). `ping` is
answered here. INIT, BACK and data_exchange become reserved intents in the conversation
the token belongs to; the actions pick the next screen, which arrives as a custom message
and is returned encrypted. The answer always leaves within the turn budget: on overrun the
customer sees a screen that hands over to the chat while the turn finishes in the
background. A final screen (SUCCESS) also becomes `flow_completed` in the conversation,
once per flow token, whichever way the completion arrives first; a completion turn that
failed gives the token back, so the next completion can still make the order.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.intent_text import intent_message
from connectors.edge.json_body import parse_json
from connectors.edge.signatures import verify_flow_token_signature, verify_hub_signature
from connectors.flows.completion import complete_once
from connectors.flows.crypto import FlowDecryptError, decrypt_request, encrypt_response
from connectors.jobs.customer_queue import CustomerQueues
from connectors.settings import FlowSettings
from connectors.storage.flow_claims import FLOW_CLAIM_LEASE_SECONDS
from connectors.storage.leases import new_claim
from connectors.storage.store import ConnectorStore
from shop_contract.custom_messages import FLOW_RESPONSE_KEY
from shop_contract.entities import FLOW_DATA, FLOW_SCREEN, FLOW_TOKEN
from shop_contract.flow_screens import CONTINUE_IN_CHAT_SCREEN, SUCCESS_SCREEN
from shop_contract.flow_tokens import FlowTokenError, read_token, read_token_for
from shop_contract.intents import (
    FLOW_BACK,
    FLOW_COMPLETED,
    FLOW_DATA_EXCHANGE,
    FLOW_ERROR,
    FLOW_INIT,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
FLOW_INTENTS = {"INIT": FLOW_INIT, "BACK": FLOW_BACK, "data_exchange": FLOW_DATA_EXCHANGE}
EXPIRED_MESSAGE = "This order form has expired. Please ask for a new one in the chat."

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
MakeOutput = Callable[[], OutputChannel]


class FlowTurnOutput(OutputChannel):
    """Catches the Flow screen an action sends; passes every other message to the chat."""

    def __init__(self, chat: OutputChannel) -> None:
        self.chat = chat
        self.screen: asyncio.Future[dict[str, Any] | None] = (
            asyncio.get_running_loop().create_future()
        )

    @classmethod
    def name(cls) -> str:
        return "whatsapp"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        custom = message.get("custom") or {}
        if isinstance(custom, dict) and FLOW_RESPONSE_KEY in custom:
            if not self.screen.done():
                self.screen.set_result(custom[FLOW_RESPONSE_KEY])
            return
        await self.chat.send_response(recipient_id, message)


def completion_params(screen: dict[str, Any] | None) -> dict[str, Any] | None:
    """The params of a closing SUCCESS screen, else None."""
    if not screen or screen.get("screen") != SUCCESS_SCREEN:
        return None
    params = screen.get("data", {}).get("extension_message_response", {}).get("params")
    return params if isinstance(params, dict) else None


def is_error_notification(payload: dict[str, Any]) -> bool:
    data = payload.get("data")
    return isinstance(data, dict) and any(
        k in data for k in ("error", "error_key", "error_message")
    )


class FlowEndpoint:
    """Handles one Flow data request at a time; stateless between requests."""

    def __init__(
        self,
        settings: FlowSettings,
        app_secrets: tuple[str, ...],
        store: ConnectorStore,
        queues: CustomerQueues,
        make_output: MakeOutput,
        lease_seconds: float = FLOW_CLAIM_LEASE_SECONDS,
    ) -> None:
        self.settings = settings
        self.lease_seconds = lease_seconds  # of a completion turn's claim on its flow token
        self.app_secrets = app_secrets
        self.store = store
        self.queues = queues
        self.make_output = make_output
        self.crypto_pool = ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1, thread_name_prefix="flow-crypto"
        )

    async def handle(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        body = request.body or b""
        if len(body) > MAX_BODY_BYTES:
            return response.text("", status=413)
        if not verify_hub_signature(
            body, request.headers.get("X-Hub-Signature-256"), self.app_secrets
        ):
            logger.warning("flow request with a missing or wrong signature")
            return response.text("", status=432)
        if self.settings.private_key is None:
            logger.warning("flow request refused: WHATSAPP_FLOW_PRIVATE_KEY is not set")
            return response.text("", status=421)
        try:
            # The RSA step is most of a request's cost; OpenSSL releases the GIL for it, so
            # running it on worker threads lets one process use every core for Flow traffic.
            decrypted = await asyncio.get_running_loop().run_in_executor(
                self.crypto_pool, decrypt_request, parse_json(body), self.settings.private_key
            )
        except (FlowDecryptError, ValueError) as error:
            logger.warning("flow request cannot be decrypted: %s", error)
            return response.text("", status=421)
        payload = decrypted.payload

        def answer(content: dict[str, Any], status: int = 200) -> HTTPResponse:
            encrypted = encrypt_response(content, decrypted.aes_key, decrypted.iv)
            return response.text(encrypted, status=status)

        action = payload.get("action")
        if action == "ping":
            return answer({"data": {"status": "active"}})
        token_text = payload.get("flow_token")
        try:
            token = read_token(token_text, self.app_secrets)
        except FlowTokenError as error:
            logger.info("flow token refused: %s", error)
            return answer({"error_msg": EXPIRED_MESSAGE}, status=427)
        signature = payload.get("flow_token_signature")
        if signature is not None and not (
            isinstance(signature, str)
            and verify_flow_token_signature(signature, str(token_text), self.app_secrets)
        ):
            logger.warning("flow token signature does not verify")
            return answer({"error_msg": EXPIRED_MESSAGE}, status=427)
        raw_data = payload.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if is_error_notification(payload):
            logger.warning(
                "flow error notification: action=%s screen=%s key=%s",
                action,
                payload.get("screen"),
                data.get("error") or data.get("error_key"),
            )
            self.schedule(token.conversation_id, FLOW_ERROR, payload, on_new_message)
            return answer({"data": {"acknowledged": True}})
        intent = FLOW_INTENTS.get(str(action))
        if intent is None:
            logger.warning("flow request with unknown action: %s", action)
            return answer({"data": {"acknowledged": True}})
        screen = await self.run_turn(token.conversation_id, intent, payload, on_new_message)
        return answer(screen)

    def entities(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = payload.get("data")
        return {
            FLOW_TOKEN: payload.get("flow_token"),
            FLOW_SCREEN: payload.get("screen"),
            FLOW_DATA: data if isinstance(data, dict) else {},
        }

    def schedule(
        self,
        conversation_id: str,
        intent: str,
        payload: dict[str, Any],
        on_new_message: OnNewMessage,
    ) -> None:
        """A Flow event handled in the background, in the conversation's order."""
        text = intent_message(intent, self.entities(payload))

        async def job() -> None:
            await on_new_message(
                UserMessage(text, self.make_output(), conversation_id, input_channel="whatsapp")
            )

        self.queues.submit(conversation_id, job, f"flow {intent}")

    async def run_turn(
        self,
        conversation_id: str,
        intent: str,
        payload: dict[str, Any],
        on_new_message: OnNewMessage,
    ) -> dict[str, Any]:
        """The next screen, from the actions, within the budget."""
        output = FlowTurnOutput(self.make_output())
        text = intent_message(intent, self.entities(payload))

        async def job() -> None:
            try:
                await on_new_message(
                    UserMessage(text, output, conversation_id, input_channel="whatsapp")
                )
            finally:
                if not output.screen.done():
                    output.screen.set_result(None)
            await self.complete_if_final(conversation_id, output.screen.result(), on_new_message)

        self.queues.submit(conversation_id, job, f"flow {intent}")
        try:
            screen = await asyncio.wait_for(
                asyncio.shield(output.screen), self.settings.turn_budget_seconds
            )
        except asyncio.TimeoutError:
            logger.warning("flow turn over budget: the customer continues in the chat")
            return {"screen": CONTINUE_IN_CHAT_SCREEN, "data": {}}
        if screen is None:
            logger.warning("flow turn produced no screen: the customer continues in the chat")
            return {"screen": CONTINUE_IN_CHAT_SCREEN, "data": {}}
        return screen

    async def complete_if_final(
        self, conversation_id: str, screen: dict[str, Any] | None, on_new_message: OnNewMessage
    ) -> None:
        """A closing screen continues the order in the chat, once per flow token (one
        issued for this conversation)."""
        params = completion_params(screen)
        if params is None:
            return
        token = params.get("flow_token")
        try:
            read_token_for(token, conversation_id, self.app_secrets)
        except FlowTokenError as error:
            logger.warning("flow completion refused: %s", error)
            return
        text = intent_message(
            FLOW_COMPLETED,
            {
                FLOW_TOKEN: token,
                FLOW_DATA: {k: v for k, v in params.items() if k != "flow_token"},
            },
        )
        message = UserMessage(text, self.make_output(), conversation_id, input_channel="whatsapp")
        claim = await complete_once(
            self.store,
            str(token),
            new_claim(),
            lambda: on_new_message(message),
            self.lease_seconds,
        )
        if claim != "ours":
            logger.info("flow completion from the endpoint not run: token %s", claim)
