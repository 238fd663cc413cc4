"""The hand-over webhook: JSON events POSTed to the shop's URL (HANDOVER_WEBHOOK_URL), signed.

Every request carries `X-Handover-Signature: t=<unix time>,v1=<hex>` — Stripe's scheme: the
HMAC-SHA256 of "<t>.<raw body>" keyed with HANDOVER_WEBHOOK_SECRET, one v1 per secret while
one is rotated — made anew for each attempt. A receiver recomputes it over the raw bytes,
compares in constant time, refuses a `t` more than five minutes from its clock (a replay)
and drops an event whose `id` it has seen (the outbox delivers at least once).

One POST is one attempt: the outbox worker retries a failure with backoff, so a slow or
down receiver delays events but loses none. Redirects are not followed: aiohttp would turn
a 301/302 into a bodiless GET (whose 200 would count as delivered) and send a 307's body and
signature elsewhere; a 3xx is a failed attempt, the receiver's URL is to be fixed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from connectors.edge.signatures import timestamped_signature

SIGNATURE_HEADER = "X-Handover-Signature"
EVENT_HEADER = "X-Handover-Event"
TIMEOUT_SECONDS = 10.0


class ShopWebhookError(Exception):
    """The shop's receiver did not take the event (no answer, or not 2xx); retried later."""


class ShopWebhook:
    """POSTs signed events to the shop's receiver.

    The HTTP session is opened on first use inside the running event loop."""

    def __init__(self, url: str, secrets: Sequence[str]) -> None:
        self.url = url
        self.secrets = tuple(secrets)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, event: dict[str, Any]) -> None:
        """Delivers one event; ShopWebhookError when the receiver does not answer 2xx."""
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: timestamped_signature(body, self.secrets, int(time.time())),
            EVENT_HEADER: str(event.get("type", "")),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            )
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise ShopWebhookError(f"no answer ({type(error).__name__})") from None
        if 300 <= status < 400:
            raise ShopWebhookError(f"the receiver answered {status}, a redirect: not followed")
        if not 200 <= status < 300:
            raise ShopWebhookError(f"the receiver answered {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
