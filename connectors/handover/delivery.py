"""Sending the outbox's entries: hand-over events to the shop's webhook, the staff alert to
the staff's WhatsApp number, everything else (notifications, staff replies) to the customer."""

from __future__ import annotations

from typing import Any

from connectors.handover.notices import SHOP_WEBHOOK, STAFF_ALERT
from connectors.handover.shop_webhook import ShopWebhook
from connectors.jobs.outbox import Deliver, Undeliverable


class OutboxDelivery:
    """The outbox worker's `deliver`, around WhatsApp's (`whatsapp`, which keeps the 24-hour
    window's rules: a template when it has closed)."""

    def __init__(
        self, whatsapp: Deliver, shop_webhook: ShopWebhook | None, staff_wa_id: str | None
    ) -> None:
        self.whatsapp = whatsapp
        self.shop_webhook = shop_webhook
        self.staff_wa_id = staff_wa_id

    async def __call__(self, customer_id: str, body: dict[str, Any]) -> str | None:
        kind = body.get("type")
        if kind == SHOP_WEBHOOK:
            if self.shop_webhook is None:
                raise Undeliverable("hand-over event, but HANDOVER_WEBHOOK_URL is not set")
            await self.shop_webhook.post(body["event"])
            return None
        if kind == STAFF_ALERT:
            if self.staff_wa_id is None:
                raise Undeliverable("staff alert, but HANDOVER_STAFF_WA_ID is not set")
            return await self.whatsapp(self.staff_wa_id, {"type": "text", "text": body["text"]})
        return await self.whatsapp(customer_id, body)
