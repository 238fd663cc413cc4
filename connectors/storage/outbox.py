"""The notification outbox: order notifications kept until Meta has accepted them.

Entries are taken by a worker under a claim token with a lease (a conditional update, so
one worker of several replicas takes each); only the holder of a live claim may send an
entry or record how its attempt went.

Each customer's entries form a queue, sent in the order they were queued: an entry is not
taken while an earlier one of its queue is pending and not due (retrying, or being sent by
a worker), so a retried message is not overtaken. A dead letter no longer holds its queue:
after its 24 hours of retries the later entries go, and the dead one, if an operator
retries it, arrives out of order. Entries whose key starts with SIDE_QUEUE form a second
queue per customer: events for another receiver (the shop's hand-over webhook), whose
failures must not hold up the customer's WhatsApp messages, nor theirs the events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from connectors.metrics import UNREADABLE_ROWS
from connectors.storage.keys import UnreadableError
from connectors.storage.leases import new_claim
from connectors.storage.schema import outbox
from connectors.storage.sealing import Sealer, binding, digest, row_identity

logger = logging.getLogger(__name__)

SIDE_QUEUE = "side:"


def _queue(table: Any) -> Any:
    """The queue (of its customer) an entry is in, as SQL."""
    return sa.case((table.c.dedup_key.startswith(SIDE_QUEUE), "side"), else_="main")


@dataclass(frozen=True)
class OutboxEntry:
    """A queued notification, opened: the customer's real id and the message body."""

    id: int
    customer_id: str
    body: str
    status: str
    attempts: int
    created_at: float
    last_error: str | None
    claim: str | None = None  # set on entries a worker has claimed
    unreadable: bool = False  # listed only: its sealed values do not open (customer, body "")
    side_queue: bool = False  # in its customer's second queue (see the module's docstring)


class Outbox:
    """The notification_outbox table."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def enqueue(
        self, dedup_key: str, customer_id: str, body: str, connection: Connection | None = None
    ) -> bool:
        """Queues a notification; False when one with this key was queued before. With
        `connection`, inside its caller's transaction, which a queued key fails as a whole
        (IntegrityError): the entry is written together with what it tells of."""
        now = time.time()
        customer = self.sealer.customer_columns(outbox, dedup_key, customer_id)
        bound_to = binding(dedup_key, customer["customer_pseudonym"])
        insert = outbox.insert().values(
            dedup_key=dedup_key,
            **customer,
            body=self.sealer.seal(outbox, "body", bound_to, body),
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        if connection is not None:
            connection.execute(insert)
            return True
        try:
            with self.engine.begin() as own:
                own.execute(insert)
        except IntegrityError:
            return False
        return True

    def queued_body(self, dedup_key: str) -> str | None:
        """The body queued under `dedup_key`; None when nothing is."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(outbox).where(outbox.c.dedup_key == dedup_key)
            ).first()
        return None if row is None else self._entry(row).body

    def claim_due(self, lease_seconds: float, limit: int = 20) -> list[OutboxEntry]:
        """Pending notifications whose time has come and whose queue holds no earlier one
        that is not, oldest first, each taken under a new claim token and pushed
        `lease_seconds` ahead by a conditional update, so that one worker (of several
        replicas) takes it."""
        now = time.time()
        earlier = outbox.alias("earlier")
        held_back = sa.exists().where(
            earlier.c.customer_pseudonym == outbox.c.customer_pseudonym,
            _queue(earlier) == _queue(outbox),
            earlier.c.status == "pending",
            earlier.c.id < outbox.c.id,
            earlier.c.next_attempt_at > now,
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(outbox)
                .where(outbox.c.status == "pending")
                .where(outbox.c.next_attempt_at <= now)
                .where(~held_back)
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
        taken = []
        for row in rows:
            claim = new_claim()
            with self.engine.begin() as connection:
                won = connection.execute(
                    outbox.update()
                    .where(outbox.c.id == row.id)
                    .where(outbox.c.status == "pending")
                    .where(outbox.c.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=now + lease_seconds, claim_token=claim)
                ).rowcount
            entry = self._sendable(row, claim) if won else None
            if entry is not None:
                taken.append(entry)
        return taken

    def _sendable(self, row: Any, claim: str) -> OutboxEntry | None:
        """The entry of a claimed row, or None when its sealed values do not open: such a
        row (altered, or moved from another) is never sent, but made a dead letter."""
        try:
            return self._entry(row, claim)
        except UnreadableError as error:
            logger.error("notification=%s cannot be opened; now a dead letter: %s", row.id, error)
            UNREADABLE_ROWS.labels(outbox.name).inc()
            with self.engine.begin() as connection:
                connection.execute(
                    outbox.update()
                    .where(outbox.c.id == row.id)
                    .values(status="dead", last_error=f"unreadable: {error}"[:255])
                )
            return None

    def renew(self, entry_id: int, claim: str, lease_seconds: float) -> bool:
        """Extends a live claim; False when its lease ran out or another worker holds the
        entry now. Called right before a send and while it runs: a worker whose lease ran
        out must not send, since another one may already be sending."""
        now = time.time()
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                _claimed(entry_id, claim)
                .where(outbox.c.next_attempt_at > now)
                .values(next_attempt_at=now + lease_seconds)
            ).rowcount
        return renewed == 1

    def mark_sent(self, entry_id: int, claim: str, message_id: str | None) -> bool:
        """Marks a claimed entry sent; False (nothing changed) when the claim was lost."""
        return self._settle(
            entry_id,
            claim,
            status="sent",
            sent_at=time.time(),
            message_id=digest(message_id) if message_id else None,
        )

    def mark_failed(self, entry_id: int, claim: str, error: str, retry_at: float | None) -> bool:
        """Counts a failed attempt; `retry_at` None makes the entry a dead letter. False
        (nothing changed) when the claim was lost."""
        return self._settle(
            entry_id,
            claim,
            attempts=outbox.c.attempts + 1,
            last_error=error[:255],
            status="pending" if retry_at is not None else "dead",
            next_attempt_at=retry_at if retry_at is not None else time.time(),
        )

    def release(self, entry_id: int, claim: str) -> bool:
        """Gives back a claimed entry unsent (an earlier one of its queue failed): due again,
        it waits for that one."""
        return self._settle(entry_id, claim, next_attempt_at=time.time())

    def mark_undeliverable(self, entry_id: int, claim: str, reason: str) -> bool:
        """WhatsApp's rules forbid sending the entry at all: it leaves the queue as
        'undeliverable' (not 'sent'). False (nothing changed) when the claim was lost."""
        return self._settle(
            entry_id,
            claim,
            status="undeliverable",
            attempts=outbox.c.attempts + 1,
            last_error=reason[:255],
        )

    def _settle(self, entry_id: int, claim: str, **values: Any) -> bool:
        """Applies `values` to a pending entry still held under `claim`; False otherwise."""
        with self.engine.begin() as connection:
            changed: int = connection.execute(_claimed(entry_id, claim).values(**values)).rowcount
        return changed == 1

    def entries(self, status: str | None = None) -> list[OutboxEntry]:
        """Every entry (or those in `status`), for the operator's listing."""
        query = sa.select(outbox).order_by(outbox.c.id)
        if status:
            query = query.where(outbox.c.status == status)
        with self.engine.connect() as connection:
            return [self._listed(row) for row in connection.execute(query).all()]

    def _listed(self, row: Any) -> OutboxEntry:
        """An entry for the operator's listing, also when its sealed values do not open."""
        try:
            return self._entry(row)
        except UnreadableError:
            return OutboxEntry(
                row.id,
                "",
                "",
                row.status,
                row.attempts,
                row.created_at,
                row.last_error,
                unreadable=True,
            )

    def retry_dead(self, ids: list[int] | None) -> int:
        """Dead letters (all, or these ids) back to pending, now; returns how many."""
        query = outbox.update().where(outbox.c.status == "dead")
        if ids is not None:
            query = query.where(outbox.c.id.in_(ids))
        with self.engine.begin() as connection:
            changed: int = connection.execute(
                query.values(status="pending", next_attempt_at=time.time(), attempts=0)
            ).rowcount
        return changed

    def _entry(self, row: Any, claim: str | None = None) -> OutboxEntry:
        bound_to = row_identity(outbox, row._mapping)
        return OutboxEntry(
            row.id,
            str(self.sealer.open(outbox, "customer_sealed", bound_to, row.customer_sealed)),
            str(self.sealer.open(outbox, "body", bound_to, row.body)),
            row.status,
            row.attempts,
            row.created_at,
            row.last_error,
            claim,
            side_queue=row.dedup_key.startswith(SIDE_QUEUE),
        )


def _claimed(entry_id: int, claim: str) -> Any:
    """An outbox update limited to a pending entry still held under `claim`."""
    return (
        outbox.update()
        .where(outbox.c.id == entry_id)
        .where(outbox.c.status == "pending")
        .where(outbox.c.claim_token == claim)
    )
