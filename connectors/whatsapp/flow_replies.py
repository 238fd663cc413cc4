"""A Flow's completion (the nfm_reply message): the input it gives Rasa, once its flow token
is verified, and its turn run once per token even when Meta re-delivers it or it is replayed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.flows.completion import complete_once
from connectors.flows.endpoint import EXPIRED_MESSAGE
from connectors.log_refs import customer_ref, message_ref
from connectors.storage.sealing import digest
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.intents import completion_token, flow_completed_text, is_order_completion
from connectors.whatsapp.output import WhatsAppOutput
from connectors.whatsapp.payloads import InboundMessage
from shop_contract.flow_tokens import FlowTokenError, read_token_for

logger = logging.getLogger(__name__)


async def completion_input(
    message: InboundMessage,
    store: ConnectorStore,
    app_secrets: tuple[str, ...],
    output: WhatsAppOutput,
) -> tuple[str | None, str | None]:
    """Rasa's input for a completion and its verified flow token; none for the 'continue in
    the chat' hand-over, for a completion already handled, or for a token that is refused
    (the customer is told the form expired)."""
    response_json = message.flow_response or {}
    if not is_order_completion(response_json):
        return None, None  # the 'continue in the chat' hand-over: the turn already runs
    token = completion_token(response_json)
    if isinstance(token, str) and await asyncio.to_thread(store.flow_claims.is_done, token):
        # a re-delivery or replay once the order exists: nothing to do, nothing to say
        logger.info("flow completion already handled: message=%s", message_ref(message.id))
        return None, None
    try:
        read_token_for(token, message.customer.key, app_secrets)
    except FlowTokenError as error:
        logger.warning(
            "flow completion refused: %s; message=%s customer=%s",
            error,
            message_ref(message.id),
            customer_ref(message.customer.key),
        )
        await output.send_text_message(message.customer.key, EXPIRED_MESSAGE)
        return None, None
    return flow_completed_text(response_json), str(token)  # a verified token


async def complete(
    store: ConnectorStore,
    lease_seconds: float,
    message: InboundMessage,
    flow_token: str,
    turn: Callable[[], Awaitable[Any]],
) -> bool:
    """Runs the completion turn, claimed under its message id digest so that its replay
    after a crash takes its own claim again; False when another completion's turn holds the
    token: the message waits for a replay instead of being dropped."""
    claim = await complete_once(store, flow_token, digest(message.id), turn, lease_seconds)
    if claim == "held":
        logger.info(
            "flow completion waits: another turn holds its token; message=%s",
            message_ref(message.id),
        )
        return False
    if claim == "done":
        logger.info("flow completion already handled: message=%s", message_ref(message.id))
    return True
