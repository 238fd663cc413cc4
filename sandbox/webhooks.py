"""Delivers signed webhook requests to the bot, as Meta and Stripe do: the raw JSON body,
the platform's signature header, a short timeout, and a few retries when the bot does not
answer 2xx. Each attempt is recorded so tests and the pages can show what was delivered."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.edge.signatures import hub_signature, stripe_signature

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt: what was sent where, and the bot's answer (0: no answer)."""

    url: str
    kind: str
    status: int
    at: float


def meta_headers(body: bytes, app_secret: str) -> dict[str, str]:
    """The headers of a Meta webhook POST (X-Hub-Signature-256 over the raw body)."""
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": hub_signature(body, app_secret),
    }


def stripe_headers(body: bytes, webhook_secret: str) -> dict[str, str]:
    """The headers of a Stripe webhook POST (Stripe-Signature: t=…,v1=…), signed now."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": stripe_signature(body, webhook_secret, int(time.time())),
    }


async def deliver(
    url: str, document: dict[str, Any], sign: str, secret: str, kind: str
) -> Delivery:
    """POSTs `document` to `url`, signed the `sign` way ("meta" or "stripe"), retrying a
    non-2xx answer or a connection error up to ATTEMPTS times; returns the last attempt.

    Stripe signs each attempt anew (a fresh timestamp), so the signature is made per attempt.
    """
    body = json.dumps(document).encode("utf-8")
    status = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(ATTEMPTS):
            headers = meta_headers(body, secret) if sign == "meta" else stripe_headers(body, secret)
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            if 200 <= status < 300:
                break
            logger.warning("webhook %s answered %s (attempt %d)", kind, status, attempt + 1)
            if attempt + 1 < ATTEMPTS:  # no wait after the last attempt: nothing follows it
                await asyncio.sleep(RETRY_DELAY_SECONDS * (attempt + 1))
    return Delivery(url, kind, status, time.time())
