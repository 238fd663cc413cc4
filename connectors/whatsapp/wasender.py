"""WASenderApi: the optional transport for order notifications outside the 24-hour window.

For shops without an approved Utility template. It sends plain text to a phone number;
429 and 5xx are retried with backoff, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from connectors.whatsapp.graph import backoff_delay, retry_after_seconds

logger = logging.getLogger(__name__)


class WaSenderError(Exception):
    """A notification WASender did not take; `status` is None when no response arrived."""

    def __init__(self, status: int | None, retryable: bool) -> None:
        super().__init__(f"WASender send failed: status={status}")
        self.status = status
        self.retryable = retryable


class WaSenderClient:
    """Sends text messages through WASenderApi's send-message endpoint."""

    def __init__(
        self,
        api_base: str,
        api_key: str,
        timeout_seconds: float = 10.0,
        max_attempts: int = 4,
        base_backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._url = api_base.rstrip("/") + "/send-message"
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_attempts = max_attempts
        self._base = base_backoff_seconds
        self._ceiling = max_backoff_seconds
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def send_text(self, phone_id: str, text: str) -> str:
        """Sends `text` to the WhatsApp number `phone_id` (digits); returns WASender's id."""
        body = {"to": "+" + phone_id.lstrip("+"), "text": text}
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                status, payload, retry_after = await self._post(body)
            except (asyncio.TimeoutError, aiohttp.ClientConnectionError):
                status, payload = None, None
            if status is not None and status < 400:
                data = payload.get("data") if isinstance(payload, dict) else None
                message_id = data.get("msgId") if isinstance(data, dict) else None
                return str(message_id or "")
            retryable = status is None or status == 429 or status >= 500
            if not retryable or attempt == self._max_attempts:
                raise WaSenderError(status, retryable)
            await self._sleep(backoff_delay(attempt, retry_after, self._base, self._ceiling))

    async def _post(self, body: dict[str, str]) -> tuple[int, Any, float | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._api_key}"}
            )
        async with self._session.post(self._url, json=body, timeout=self._timeout) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = None
            return response.status, payload, retry_after_seconds(response.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
