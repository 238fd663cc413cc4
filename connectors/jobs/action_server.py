"""Waiting for the action server before replaying recorded work at start-up.

The Rasa server is up in about a second, the action server a few seconds later (both start
together: `make run`, a container restart). Replayed customer messages are the first turns
after a crash, and Rasa runs a turn whose custom action cannot be reached as if the action
had said nothing: the customer's message is answered with silence and counts as handled.
So the first replay sweep (and the reminder sweep) waits until the action server answers
at all, for a bounded time; new messages are not held up. Any HTTP answer counts: behind a
gateway the health route may need the endpoint's credentials, or redirect, while the
server is up all the same; a refused connection or no answer is what start-up looks like.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import aiohttp

logger = logging.getLogger(__name__)

ACTIONS_START_WAIT_SECONDS = 120.0  # then replays go ahead, as they did before this wait
POLL_SECONDS = 0.25
CHECK_TIMEOUT_SECONDS = 2.0


def health_url(webhook_url: str) -> str:
    """The action server's health route (rasa_sdk serves `/health` beside `/webhook`)."""
    parts = urlsplit(webhook_url)
    path = parts.path.rsplit("/webhook", 1)[0] if parts.path.endswith("/webhook") else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/health", "", ""))


async def wait_for_actions(
    webhook_url: str | None, timeout: float = ACTIONS_START_WAIT_SECONDS
) -> bool:
    """True once the action server at `webhook_url` answers its health route with any HTTP
    status (at once when the bot has none), False when it has not within `timeout`."""
    if not webhook_url:
        return True
    url, deadline = health_url(webhook_url), time.monotonic() + timeout
    limit = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=limit) as session:
        while True:
            try:
                async with session.get(url, allow_redirects=False):
                    return True
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if time.monotonic() >= deadline:
                logger.warning(
                    "action server not answering %s after %.0f s: replaying anyway", url, timeout
                )
                return False
            await asyncio.sleep(POLL_SECONDS)
