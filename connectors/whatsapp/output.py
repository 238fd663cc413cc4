"""The WhatsApp output channel: Rasa's responses as Graph API messages.

Inside the customer's 24-hour window everything is sent as is. Outside it, WhatsApp only
accepts templates: order notifications (the turns the connector starts for Stripe events)
go out as the configured Utility template — or through WASender when that transport is
chosen — and other free-form messages are not attempted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rasa.core.channels.channel import OutputChannel

from connectors.jobs.outbox import OutboxWriter, Undeliverable
from connectors.settings import WhatsAppSettings
from connectors.storage.reminders import reminder_of
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.commerce import catalog_bodies
from connectors.whatsapp.graph import GraphApiError, GraphClient
from connectors.whatsapp.messages import (
    buttons_bodies,
    envelope,
    image_body,
    is_business_scoped,
    template_body,
    text_bodies,
)
from connectors.whatsapp.wasender import WaSenderClient, WaSenderError
from shop_contract.custom_messages import (
    CATALOG_PRODUCTS_KEY,
    CHECKOUT_REMINDER_KEY,
    ERASE_REQUEST_KEY,
    FLOW_RESPONSE_KEY,
    HANDOVER_REQUEST_KEY,
    PRODUCTS_FALLBACK,
)

logger = logging.getLogger(__name__)

# Not a Graph API type: the body of a 24-hour-window fallback queued in the outbox, which
# `deliver` sends the way notifications go outside the window (template or WASender).
OUTSIDE_WINDOW = "outside_window"

CHANNEL_NAME = "whatsapp"  # Rasa's name of the channel, in and out

WINDOW_SECONDS = 24 * 60 * 60
WINDOW_SAFETY_SECONDS = 60  # do not start a free-form send in the window's last minute


def outside_window_body(text: str) -> dict[str, Any]:
    """A notification to send as the outside-window form, whatever the window says."""
    return {"type": OUTSIDE_WINDOW, "text": {"body": text}}


def body_text(body: dict[str, Any]) -> str:
    """The readable text of a message body (for templates and WASender)."""
    kind = body.get("type")
    if kind in ("text", OUTSIDE_WINDOW):
        return str(body["text"]["body"])
    if kind == "interactive":
        interactive = body["interactive"]
        text = str(interactive.get("body", {}).get("text", ""))
        if interactive.get("type") == "cta_url":
            url = interactive["action"]["parameters"]["url"]
            return f"{text} {url}".strip()
        return text
    if kind == "image":
        return str(body["image"].get("caption", ""))
    return ""


class WhatsAppOutput(OutputChannel):
    """Sends Rasa's responses to one WhatsApp number through the Graph API."""

    def __init__(
        self,
        settings: WhatsAppSettings,
        graph: GraphClient,
        store: ConnectorStore,
        notifications: bool = False,
        wasender: WaSenderClient | None = None,
        outbox: OutboxWriter | None = None,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.store = store
        self.notifications = notifications
        self.wasender = wasender
        self.outbox = outbox
        # Set by the erase action's request (actions/privacy_actions.py): the texts to send
        # after the connector has erased the customer, once the turn is saved.
        self.erase_request: dict[str, str] | None = None
        # Set by the hand-over action's request (actions/handover_actions.py): the reason and
        # texts for the connector to act on once the turn is saved (connectors/handover/).
        self.handover_request: dict[str, Any] | None = None

    @classmethod
    def name(cls) -> str:
        return CHANNEL_NAME

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for body in text_bodies(text):
            await self.send_body(recipient_id, body)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_body(recipient_id, image_body(image))

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        for body in buttons_bodies(text, buttons):
            await self.send_body(recipient_id, body)

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, attachment)

    async def send_elements(
        self, recipient_id: str, elements: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        for element in elements:
            title = str(element.get("title") or "")
            await self.send_text_with_buttons(recipient_id, title, element.get("buttons") or [])

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """A Graph API message body (interactive Flow, cta_url, template, …) sent as is."""
        if FLOW_RESPONSE_KEY in json_message:
            logger.warning("flow screen reached the chat channel; dropped")
            return
        if ERASE_REQUEST_KEY in json_message:
            texts = json_message[ERASE_REQUEST_KEY]
            self.erase_request = (
                {k: str(v) for k, v in texts.items()} if isinstance(texts, dict) else {}
            )
            return
        if HANDOVER_REQUEST_KEY in json_message:
            request = json_message[HANDOVER_REQUEST_KEY]
            self.handover_request = request if isinstance(request, dict) else {}
            return
        if CHECKOUT_REMINDER_KEY in json_message:
            await self.keep_reminder(recipient_id, json_message[CHECKOUT_REMINDER_KEY])
            return
        if CATALOG_PRODUCTS_KEY in json_message:
            await self.send_products(recipient_id, json_message[CATALOG_PRODUCTS_KEY])
            return
        if not isinstance(json_message.get("type"), str):
            logger.warning("custom message without a Graph 'type'; dropped")
            return
        await self.send_body(recipient_id, json_message)

    async def keep_reminder(self, recipient_id: str, request: Any) -> None:
        """Keeps the reminder a payment link's turn asked for (connectors/stripe/reminders.py);
        a replayed turn keeps the same one, a newer link of the order moves it."""
        reminder = reminder_of(request)
        if reminder is None:
            logger.warning("checkout reminder request malformed; dropped")
            return
        await asyncio.to_thread(self.store.reminders.schedule, recipient_id, *reminder)

    async def send_products(self, recipient_id: str, request: Any) -> None:
        """Products from the Meta catalog, as product messages with the catalog's id; the
        request's fallback text when this server has no WHATSAPP_CATALOG_ID (the action
        server's settings differ) or the request cannot be built."""
        request = request if isinstance(request, dict) else {}
        catalog_id = self.settings.catalog_id
        bodies = catalog_bodies(request, catalog_id) if catalog_id else []
        if not bodies:
            logger.warning("catalog products sent as text: no catalog id or unusable request")
            bodies = text_bodies(str(request.get(PRODUCTS_FALLBACK) or ""))
        for body in bodies:
            await self.send_body(recipient_id, body)

    def within_window(self, customer_id: str, now: float | None = None) -> bool:
        last = self.store.messages.last_inbound_at(customer_id)
        if last is None:
            return False
        return (now or time.time()) - last < WINDOW_SECONDS - WINDOW_SAFETY_SECONDS

    async def send_body(self, recipient_id: str, body: dict[str, Any]) -> str | None:
        """Sends one message body to the customer; returns Meta's message id, if sent.

        Failures are logged, not raised: a reply that cannot go out must not break the turn.
        With an outbox (order notifications), the body is queued there instead and sent by
        the outbox worker, which retries until Meta accepts it.
        """
        if self.outbox is not None:
            await self.outbox.enqueue(recipient_id, body)
            return None
        try:
            return await self.deliver(recipient_id, body)
        except Undeliverable as refusal:
            logger.warning("message not sent: %s", refusal)
            return None
        except (GraphApiError, WaSenderError) as error:
            logger.warning(
                "message not sent: status=%s code=%s title=%s",
                error.status,
                getattr(error, "code", None),
                getattr(error, "title", None),
            )
            return None

    async def deliver(self, recipient_id: str, body: dict[str, Any]) -> str | None:
        """Sends one body within WhatsApp's rules; raises when the transport refuses it.

        Returns Meta's (or WASender's) message id, or None for a free-form reply outside the
        24-hour window (not attempted). Raises Undeliverable for a notification the rules
        forbid sending at all (no template or transport for it).
        """
        if body.get("type") == OUTSIDE_WINDOW:
            return await self.send_outside_window(recipient_id, body_text(body))
        in_window = await asyncio.to_thread(self.within_window, recipient_id)
        if in_window or body.get("type") == "template":
            kind = "notification" if self.notifications else "reply"
            return await self._send_graph(recipient_id, body, kind)
        if not self.notifications:
            logger.info("outside the 24-hour window: free-form reply not attempted")
            return None
        return await self.send_outside_window(recipient_id, body_text(body))

    async def send_outside_window(self, recipient_id: str, text: str) -> str:
        """An order notification when free-form messages are not allowed; raises on failure,
        Undeliverable when there is no way to send it."""
        refusal = self.outside_window_refusal(recipient_id)
        if refusal is not None:
            raise Undeliverable(refusal)
        if self.settings.notification_transport == "wasender" and self.wasender:
            return await self.wasender.send_text(recipient_id, text)
        return await self._send_graph(recipient_id, self.template_for(text), "template")

    def outside_window_refusal(self, recipient_id: str) -> str | None:
        """Why no notification can reach the customer outside the 24-hour window (None when
        the template or WASender can)."""
        if self.settings.notification_transport == "wasender" and self.wasender:
            if is_business_scoped(recipient_id):
                return "WASender needs a phone number; customer has only a user id"
            return None
        if not self.settings.notification_template:
            return "outside the 24-hour window and no WHATSAPP_NOTIFICATION_TEMPLATE set"
        return None

    def notification_refusal(self, recipient_id: str) -> str | None:
        """Why a notification queued now cannot reach the customer (None when it can)."""
        if self.within_window(recipient_id):
            return None
        return self.outside_window_refusal(recipient_id)

    def template_for(self, text: str) -> dict[str, Any]:
        values = {"text": text, "first_line": text.strip().splitlines()[0] if text.strip() else ""}
        parameters = [values[name] for name in self.settings.template_params]
        assert self.settings.notification_template is not None
        return template_body(
            self.settings.notification_template, self.settings.template_language, parameters
        )

    async def _send_graph(self, recipient_id: str, body: dict[str, Any], kind: str) -> str:
        request = envelope(recipient_id, is_business_scoped(recipient_id), body)
        message_id = await self.graph.send_message(request)
        stored_text = body_text(body) if kind == "notification" else None
        await asyncio.to_thread(
            self.store.messages.record_outbound, message_id, recipient_id, kind, stored_text
        )
        return message_id


class Outputs:
    """Makes the output channel of each turn, all over the same Graph API and WASender
    clients: replies to a customer's message, and notifications, sent at once or through
    the outbox."""

    def __init__(
        self,
        settings: WhatsAppSettings,
        graph: GraphClient,
        store: ConnectorStore,
        wasender: WaSenderClient | None,
        outbox_wake: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.store = store
        self.wasender = wasender
        self.outbox_wake = outbox_wake  # set when a notification is queued

    def output(self, notifications: bool) -> WhatsAppOutput:
        return WhatsAppOutput(self.settings, self.graph, self.store, notifications, self.wasender)

    def notification_refusal(self, customer_id: str) -> str | None:
        """Why an order notification queued now cannot reach the customer, if it cannot."""
        return self.output(True).notification_refusal(customer_id)

    def notification_output(self, origin: str) -> WhatsAppOutput:
        """The channel of a turn an event started: its messages go through the outbox."""
        writer = OutboxWriter(self.store, origin, self.outbox_wake)
        return WhatsAppOutput(
            self.settings, self.graph, self.store, True, self.wasender, outbox=writer
        )
