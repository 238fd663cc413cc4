"""The notification outbox: order notifications are written down first and sent after.

A turn that Stripe started (payment confirmed, failed, expired, refunded, subscription)
queues its messages here, each under a key made of the event id and its position in the
turn, so a turn replayed after a crash queues nothing twice; so does a hand-over to a
person (the shop's webhook events, the staff alert and replies, keyed by what they are).
A worker in every Rasa process sends what is due, marks it sent only once Meta has
accepted it, and retries with exponential backoff for up to 24 hours; after that, or at
once when Meta refuses the message for good, the entry is a dead letter, which an operator
lists and retries with `python -m scripts.outbox_cli` (or `make outbox`). A notification
WhatsApp's rules forbid sending at all (outside the 24-hour window without a template,
WASender for a customer with no phone number) is `undeliverable`, not `sent`.

Each entry is sent under a claim with a lease. The claim is checked right before the send
and renewed while it runs, and the outcome is written only while the claim holds: a
worker whose lease ran out never sends, nor overwrites the result of the worker that took
the entry over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.jobs.leases import heartbeat, renewal_interval
from connectors.log_refs import customer_ref
from connectors.metrics import OUTBOX_DELIVERIES
from connectors.storage.outbox import OutboxEntry
from connectors.storage.store import ConnectorStore

logger = logging.getLogger(__name__)

GIVE_UP_AFTER_SECONDS = 24 * 60 * 60
MAX_DELAY_SECONDS = 60 * 60
CLAIM_LEASE_SECONDS = 120.0

Deliver = Callable[[str, dict[str, Any]], Awaitable[str | None]]
STATUSES = ("pending", "sent", "dead", "undeliverable")
SENT, PENDING, DONE = "sent", "pending", "done"  # what one attempt left the entry as
FLUSH_WAIT_SECONDS = 5.0


class Undeliverable(Exception):
    """WhatsApp's rules forbid sending this message at all; retrying cannot help. The
    message says why, without personal data."""


class OutboxWriter:
    """Queues the messages of one notification turn."""

    def __init__(self, store: ConnectorStore, origin: str, wake: asyncio.Event | None) -> None:
        self.store = store
        self.origin = origin
        self.wake = wake
        self.position = 0

    async def enqueue(self, customer_id: str, body: dict[str, Any]) -> None:
        key = f"{self.origin}:{self.position}"
        self.position += 1
        fresh = await asyncio.to_thread(
            self.store.outbox.enqueue, key, customer_id, json.dumps(body)
        )
        if not fresh:
            logger.info("notification %s was queued before; not again", key)
        if self.wake is not None:
            self.wake.set()


def is_final(error: Exception) -> bool:
    """A refusal retrying cannot change: the transport's error says it is `final` (the Graph
    API client's GraphApiError does for a malformed message or a number not on WhatsApp;
    never for a rate limit or an expired token). Anything else is worth another attempt."""
    return getattr(error, "final", False) is True


def retry_delay(attempts: int, base: float) -> float:
    """Exponential backoff with jitter, capped at an hour."""
    delay: float = min(MAX_DELAY_SECONDS, base * 2**attempts)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


class OutboxWorker:
    """Sends due notifications until cancelled; safe to run in several replicas at once."""

    def __init__(
        self,
        store: ConnectorStore,
        deliver: Deliver,
        base_delay: float,
        poll_seconds: float,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.deliver = deliver
        self.base_delay = base_delay
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.wake = asyncio.Event()
        self.waiting: list[asyncio.Future[None]] = []  # flush() callers, told after a round

    async def run_forever(self) -> None:
        while True:
            waiting, self.waiting = self.waiting, []
            try:
                await self.run_once()
            except Exception:
                logger.exception("outbox round failed; trying again")
            for done in waiting:
                if not done.done():
                    done.set_result(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_seconds)
            self.wake.clear()

    async def flush(self, timeout: float = FLUSH_WAIT_SECONDS) -> None:
        """Wakes the worker and waits (at most `timeout`) for a round that began after this
        call: what was queued before is sent first, by the worker's own round, not by a
        second one beside it."""
        done = asyncio.get_running_loop().create_future()
        self.waiting.append(done)
        self.wake.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done, timeout)

    async def run_once(self) -> int:
        """Sends what is due now; returns how many were sent. Each queue (a customer's
        messages; their events for the shop, see connectors/storage/outbox.py) goes in
        order, the queues side by side: a slow or failing receiver holds up its own queue,
        and a round lasts as long as its slowest queue (a failure ends a queue's turn)."""
        due = await asyncio.to_thread(self.store.outbox.claim_due, self.lease_seconds)
        queues: dict[tuple[str, bool], list[OutboxEntry]] = {}
        for entry in due:
            queues.setdefault((entry.customer_id, entry.side_queue), []).append(entry)
        counts = await asyncio.gather(*(self.send_in_order(e) for e in queues.values()))
        return sum(counts)

    async def send_in_order(self, entries: list[OutboxEntry]) -> int:
        """One queue's claimed entries; after one that stays pending (to be retried), the
        later ones are given back unsent, to wait for it."""
        sent = 0
        for position, entry in enumerate(entries):
            outcome = await self.send(entry)
            sent += outcome == SENT
            if outcome == PENDING:
                for later in entries[position + 1 :]:
                    assert later.claim is not None
                    await asyncio.to_thread(self.store.outbox.release, later.id, later.claim)
                break
        return sent

    async def send(self, entry: OutboxEntry) -> str:
        """One claimed entry: SENT, PENDING (retried later, or its claim was lost) or DONE
        (dead or undeliverable: it holds up nothing)."""
        claim = entry.claim
        assert claim is not None, "entries are sent only under a claim"

        def renew() -> bool:
            return self.store.outbox.renew(entry.id, claim, self.lease_seconds)

        if not await asyncio.to_thread(renew):  # e.g. the batch's earlier sends were slow
            logger.info("notification=%s not sent: its claim ran out before its turn", entry.id)
            return PENDING
        try:
            interval = renewal_interval(self.lease_seconds)
            async with heartbeat(renew, interval, f"notification {entry.id}"):
                message_id = await self.deliver(entry.customer_id, json.loads(entry.body))
        except Undeliverable as refusal:
            logger.warning(
                "notification=%s customer=%s undeliverable: %s",
                entry.id,
                customer_ref(entry.customer_id),
                refusal,
            )
            if await asyncio.to_thread(
                self.store.outbox.mark_undeliverable, entry.id, claim, str(refusal)
            ):
                OUTBOX_DELIVERIES.labels("undeliverable").inc()
            return DONE
        except Exception as error:
            return await self.failed(entry, claim, error)
        if not await asyncio.to_thread(self.store.outbox.mark_sent, entry.id, claim, message_id):
            logger.warning("notification=%s sent after its claim was lost", entry.id)
            return PENDING
        OUTBOX_DELIVERIES.labels("sent").inc()
        return SENT

    async def failed(self, entry: OutboxEntry, claim: str, error: Exception) -> str:
        """Retried later with backoff, or a dead letter at once when the refusal is final:
        retrying for a day would hold up every later message of the customer."""
        age = time.time() - entry.created_at
        retry_at = (
            None
            if age >= GIVE_UP_AFTER_SECONDS or is_final(error)
            else time.time() + retry_delay(entry.attempts, self.base_delay)
        )
        reason = f"{type(error).__name__}: {error}"
        logger.warning(
            "notification=%s customer=%s not delivered (attempt %s): %s%s",
            entry.id,
            customer_ref(entry.customer_id),
            entry.attempts + 1,
            reason,
            "; now a dead letter" if retry_at is None else "",
        )
        if await asyncio.to_thread(
            self.store.outbox.mark_failed, entry.id, claim, reason, retry_at
        ):
            OUTBOX_DELIVERIES.labels("retry" if retry_at is not None else "dead").inc()
        return PENDING if retry_at is not None else DONE
