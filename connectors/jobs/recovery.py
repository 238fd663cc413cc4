"""The recovery sweep: recorded work that a crashed or stalled process left unfinished runs again.

A message or a Stripe event is recorded under a claim before it is acknowledged, and its
holder renews the claim's lease while the work waits and runs (connectors/jobs/leases.py).
Work whose lease ran out was abandoned: the sweep of every replica, at start-up and then
every interval, claims such rows and hands each back to the edge that recorded it, which
schedules it again in its customer's order. The sweep knows tables, not what a row holds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)

# (stored id, payload, claim, done): queues the work again under `claim`; `done()` is called
# once it has run or was skipped (finished or taken over while it waited)
Reschedule = Callable[[str, str, str, Callable[[], None]], None]


@dataclass(frozen=True)
class Replayable:
    """One kind of recorded work: its table, the column of its id, how to schedule it again."""

    table: sa.Table
    id_column: str
    reschedule: Reschedule


class Recovery:
    """Sweeps for abandoned work; remembers what it queued, so that work still waiting in
    this process (e.g. for a dead replica's lock) is not queued twice."""

    def __init__(
        self, store: ConnectorStore, lease_seconds: float, interval_seconds: float
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.interval_seconds = interval_seconds
        self.replaying: set[str] = set()  # stored ids of replayed work queued in this process

    async def recover_forever(self, kinds: Sequence[Replayable]) -> None:
        """Replays, now and then every interval, work a crashed process left unfinished."""
        while True:
            try:
                await self.recover(kinds)
            except Exception:
                logger.exception("replay sweep failed; trying again later")
            await asyncio.sleep(self.interval_seconds)

    async def recover(self, kinds: Sequence[Replayable]) -> int:
        """One sweep: schedules abandoned work of each kind again, in the order given;
        returns how much was found abandoned."""
        found = 0
        for kind in kinds:
            rows = await asyncio.to_thread(
                self.store.leases.claim_abandoned, kind.table, kind.id_column, self.lease_seconds
            )
            found += len(rows)
            for stored_id, payload, claim in rows:
                if stored_id in self.replaying:
                    continue  # already queued here, still waiting (e.g. for a dead replica's lock)
                done = functools.partial(self.replaying.discard, stored_id)
                kind.reschedule(stored_id, payload, claim, done)
                self.replaying.add(stored_id)
        return found
