"""Heartbeats: a lease on recorded work is renewed for as long as the work runs.

Recorded work (a WhatsApp message, a Stripe event, an outbox entry) is held under a claim
with a lease; the recovery sweep and the outbox workers of every replica take over rows
whose lease ran out. A turn can outlast any fixed lease (a slow action server, a wait for
the conversation's lock), so while it runs its holder renews the lease every so often.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import AsyncContextManager

import sqlalchemy as sa

from connectors.log_refs import message_ref
from connectors.storage.schema import inbound_messages
from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)

# Renew three times per lease: one renewal can be late or fail without losing the lease.
RENEWALS_PER_LEASE = 3


def renewal_interval(lease_seconds: float) -> float:
    return lease_seconds / RENEWALS_PER_LEASE


@contextlib.asynccontextmanager
async def heartbeat(renew: Callable[[], bool], interval: float, label: str) -> AsyncIterator[None]:
    """Calls `renew` (a blocking store call, run in a thread) every `interval` seconds while
    the body runs. `renew` returns False once the claim is lost; renewing then stops, with a
    warning: the work itself cannot be taken back, and its completion is checked against
    the claim."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                held = await asyncio.to_thread(renew)
            except Exception:
                logger.exception("lease renewal failed for %s; trying again", label)
                continue
            if not held:
                logger.warning("lease of %s lost: taken over or finished elsewhere", label)
                return

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# (table, work id, claim) -> a heartbeat that holds the recorded work while it is handled
Hold = Callable[[sa.Table, str, str], AsyncContextManager[None]]


def hold(
    store: ConnectorStore, lease_seconds: float, table: sa.Table, work_id: str, claim: str
) -> AsyncContextManager[None]:
    """A heartbeat that keeps recorded work (a message, a Stripe event) held under `claim`
    while it waits and runs, so no replica's recovery sweep runs it again."""
    return heartbeat(
        lambda: store.leases.renew(table, work_id, claim),
        renewal_interval(lease_seconds),
        f"{table.name} {message_ref(work_id) if table is inbound_messages else work_id}",
    )
