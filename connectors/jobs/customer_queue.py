"""Background work per customer, in arrival order, that cannot be garbage-collected.

Webhooks are answered at once and the work continues in tasks. asyncio keeps only weak
references to tasks, so each is held in a set until it is done. A customer's messages are
handled one after another, in the order they arrived (asyncio.Lock wakes waiters in FIFO
order); different customers run concurrently. A job may come with a lease to hold while it
waits for its turn and while it runs (connectors/jobs/leases.py): waiting behind a slow turn must
not let another replica take the job over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import AsyncContextManager

logger = logging.getLogger(__name__)


class CustomerQueues:
    """Runs jobs in the background, one at a time per customer key."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self,
        key: str,
        job: Callable[[], Awaitable[None]],
        label: str,
        hold: AsyncContextManager[None] | None = None,
    ) -> None:
        """Schedules `job` after the customer's earlier jobs; `label` names it in logs;
        `hold` (a heartbeat) is entered at once and left when the job has ended."""
        task = asyncio.create_task(self._run(key, job, label, hold or contextlib.nullcontext()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        key: str,
        job: Callable[[], Awaitable[None]],
        label: str,
        hold: AsyncContextManager[None],
    ) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with hold, lock:
                await job()
        except Exception:
            logger.exception("background job failed: %s", label)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Waits for every scheduled job (used at shutdown and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
