"""Async client for the WhatsApp Cloud API (Meta's Graph API).

Sends messages and read receipts, and manages the business public key that WhatsApp Flows
encrypt with. Transient failures (429, 5xx, timeouts, dropped connections) are retried with
full-jitter exponential backoff; everything else becomes a `GraphApiError` carrying Meta's
error code, so the caller can decide what to tell the customer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphSettings:
    """Where the Graph API is, which business phone number speaks, and how hard to retry."""

    api_base: str
    phone_number_id: str
    access_token: str
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    base_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(
                f"GraphSettings.max_attempts: {self.max_attempts} allows no attempt; use 1 or more"
            )
        object.__setattr__(self, "api_base", self.api_base.rstrip("/"))


# Meta's error codes for a message that can never be sent as it is: invalid parameter (also
# a number not on WhatsApp), a required parameter missing, a parameter value invalid, sender
# and recipient the same, undeliverable, an unsupported type, and a template that does not
# exist or does not fit its parameters (132000, 132001, 132005, 132007, 132012).
FINAL_CODES = frozenset(
    {100, 131008, 131009, 131021, 131026, 131051, 132000, 132001, 132005, 132007, 132012}
)


class GraphApiError(Exception):
    """A Graph API call that failed for good.

    `status` is the HTTP status (None when no response arrived), `code` Meta's error code
    (None when the body carried none), `title` Meta's error message, and `retryable` says
    whether the failure was transient (retries ran out) or permanent (retrying cannot help).
    """

    def __init__(self, status: int | None, code: int | None, title: str, retryable: bool) -> None:
        super().__init__(f"Graph API call failed: status={status} code={code} title={title}")
        self.status = status
        self.code = code
        self.title = title
        self.retryable = retryable

    @property
    def final(self) -> bool:
        """Meta will never accept this message, however often it is sent again: it is
        malformed, or WhatsApp cannot reach its recipient. Rate limits (which Meta answers
        with HTTP 400 too), an expired token or a blocked account are not final: the same
        message goes out once they pass, so the outbox keeps retrying those."""
        return self.code in FINAL_CODES


@dataclass(frozen=True)
class _Answer:
    """One HTTP response, read in full."""

    status: int
    payload: Any
    retry_after: float | None


class GraphClient:
    """WhatsApp Cloud API calls for one business phone number.

    The HTTP session is opened on first use inside the running event loop and belongs to
    that loop; call `close()` before the loop ends.
    """

    def __init__(
        self,
        settings: GraphSettings,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def send_message(self, body: dict[str, Any]) -> str:
        """Sends `body` (messaging_product, to, type, ...) as is; returns the new message's id."""
        answer = await self._request("POST", "messages", json_body=body)
        try:
            message_id = answer.payload["messages"][0]["id"]
        except (KeyError, IndexError, TypeError):
            message_id = None
        if not isinstance(message_id, str):
            raise GraphApiError(answer.status, None, "response without message id", retryable=False)
        return message_id

    async def mark_read(self, message_id: str, typing_indicator: bool = True) -> None:
        """Marks an incoming message read and, by default, shows the typing indicator."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing_indicator:
            body["typing_indicator"] = {"type": "text"}
        await self._request("POST", "messages", json_body=body)

    async def upload_public_key(self, public_key_pem: str) -> None:
        """Registers the business public key (PEM) that WhatsApp Flows encrypt requests with."""
        await self._request(
            "POST", "whatsapp_business_encryption", form={"business_public_key": public_key_pem}
        )

    async def public_key_status(self) -> dict[str, Any]:
        """The registered public key and its signature status, as Meta answers them."""
        answer = await self._request("GET", "whatsapp_business_encryption")
        if not isinstance(answer.payload, dict):
            raise GraphApiError(answer.status, None, "response is not a JSON object", False)
        return answer.payload

    async def close(self) -> None:
        """Closes the HTTP session; the next call opens a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        method: str,
        edge: str,
        json_body: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
    ) -> _Answer:
        """One call with retries; returns the 2xx answer or raises GraphApiError."""
        settings = self._settings
        url = f"{settings.api_base}/{settings.phone_number_id}/{edge}"
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                answer = await self._attempt(method, url, json_body, form)
            except (asyncio.TimeoutError, aiohttp.ClientConnectionError) as exc:
                failure = GraphApiError(None, None, _network_title(exc), retryable=True)
            else:
                if answer.status < 400:
                    return answer
                failure = _error_from(answer)
                retry_after = answer.retry_after
            if not failure.retryable or attempt == settings.max_attempts:
                logger.warning(
                    "graph api call failed: edge=%s status=%s code=%s title=%s attempts=%s",
                    edge,
                    failure.status,
                    failure.code,
                    failure.title,
                    attempt,
                )
                raise failure
            delay = backoff_delay(
                attempt, retry_after, settings.base_backoff_seconds, settings.max_backoff_seconds
            )
            logger.info(
                "graph api call retried: edge=%s status=%s attempt=%s delay=%.2f",
                edge,
                failure.status,
                attempt,
                delay,
            )
            await self._sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        json_body: dict[str, Any] | None,
        form: dict[str, str] | None,
    ) -> _Answer:
        """One HTTP exchange, body read in full within the per-attempt timeout."""
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        async with self._open_session().request(
            method, url, json=json_body, data=form, timeout=timeout
        ) as response:
            raw = await response.read()
            return _Answer(response.status, _parse_json(raw), retry_after_seconds(response.headers))

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._settings.access_token}"}
            )
        return self._session


def backoff_delay(retry: int, retry_after: float | None, base: float, ceiling: float) -> float:
    """Delay before retry number `retry` (1, 2, ...): full jitter, Retry-After honoured."""
    delay = random.uniform(0, min(ceiling, base * 2 ** (retry - 1)))  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        delay = min(max(retry_after, delay), ceiling)
    return delay


def _parse_json(raw: bytes) -> Any:
    """The body as JSON, or None when it is not JSON (an HTML error page, say)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds; None when absent or not a number (HTTP dates are ignored)."""
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _error_from(answer: _Answer) -> GraphApiError:
    """The GraphApiError for a 4xx/5xx answer; 429 and 5xx are retryable."""
    error = answer.payload.get("error") if isinstance(answer.payload, dict) else None
    code = title = None
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        title = error.get("message") or error.get("error_user_title")
    retryable = answer.status == 429 or answer.status >= 500
    return GraphApiError(answer.status, code, str(title or f"HTTP {answer.status}"), retryable)


def _network_title(exc: BaseException) -> str:
    """A title for a failure without a response; the exception's class says enough."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return f"connection failed ({type(exc).__name__})"
