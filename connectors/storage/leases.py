"""Leases on recorded work (inbound messages, Stripe events): who holds it, until when.

Work is held from when it is recorded, under a claim token, and its holder renews the
lease while the work runs; work whose lease ran out (the process crashed or was killed) is
taken by a recovery sweep under a new claim and replayed from its sealed payload.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.metrics import UNREADABLE_ROWS
from connectors.storage.keys import UnreadableError
from connectors.storage.schema import ROW_IDS, inbound_messages, stripe_events
from connectors.storage.sealing import Sealer, binding, digest

logger = logging.getLogger(__name__)

# Work older than this is not replayed any more: Meta and Stripe have moved on, and a
# message that fails every time must not be retried for ever.
REPLAY_HORIZON_SECONDS = 24 * 60 * 60


def new_claim() -> str:
    """A claim token: who holds a row, so that only the holder renews or finishes it."""
    return secrets.token_hex(16)


class WorkLeases:
    """Claims on the rows of recorded work: renew, check, and take over abandoned ones."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def claim_abandoned(
        self, table: sa.Table, key: str, lease_seconds: float, limit: int = 100
    ) -> list[tuple[str, str, str]]:
        """(stored id, payload, claim) of recorded work nobody finished and nobody holds.

        After `lease_seconds` without a renewal the row is free. Each row is taken with a
        conditional update under a new claim token, so of several replicas sweeping at once
        exactly one gets it.
        """
        now = time.time()
        id_column = table.c[key]
        with self.engine.connect() as connection:
            candidates = connection.execute(
                sa.select(
                    id_column, table.c.customer_pseudonym, table.c.payload, table.c.claimed_at
                )
                .where(table.c.processed_at.is_(None))
                .where(table.c.payload.is_not(None))
                .where(table.c.claimed_at < now - lease_seconds)
                .where(table.c.received_at > now - REPLAY_HORIZON_SECONDS)
                .order_by(table.c.received_at)
                .limit(limit)
            ).all()
        taken = []
        for row_id, customer_pseudonym, payload, claimed_at in candidates:
            claim = new_claim()
            with self.engine.begin() as connection:
                won = connection.execute(
                    table.update()
                    .where(id_column == row_id)
                    .where(table.c.processed_at.is_(None))
                    .where(table.c.claimed_at == claimed_at)
                    .values(claimed_at=now, claim_token=claim)
                ).rowcount
            bound_to = binding(str(row_id), customer_pseudonym)
            opened = self._replayable(table, bound_to, str(row_id), payload, claim) if won else None
            if opened is not None:
                taken.append((str(row_id), opened, claim))
        return taken

    def _replayable(
        self, table: sa.Table, bound_to: str, stored_id: str, payload: str, claim: str
    ) -> str | None:
        """The payload of work just claimed, or None when it does not open: such a row
        (altered, or moved from another) is finished as 'unreadable', logged and counted
        once, and left for an operator; it does not hold up the others."""
        try:
            return str(self.sealer.open(table, "payload", bound_to, payload))
        except UnreadableError as error:
            logger.error("%s %s set aside as unreadable: %s", table.name, stored_id, error)
            UNREADABLE_ROWS.labels(table.name).inc()
            with self.engine.begin() as connection:
                connection.execute(
                    table.update()
                    .where(table.c[ROW_IDS[table.name]] == stored_id)
                    .where(table.c.claim_token == claim)
                    .values(processed_at=time.time(), outcome="unreadable")
                )
            return None

    def renew(self, table: sa.Table, work_id: str, claim: str) -> bool:
        """Renews the lease on unfinished work held under `claim`; False when it is not held
        under it any more (another process took it over, or it is finished)."""
        with self.engine.begin() as connection:
            renewed: int = connection.execute(
                table.update()
                .where(_work_row(table, work_id))
                .where(table.c.claim_token == claim)
                .where(table.c.processed_at.is_(None))
                .values(claimed_at=time.time())
            ).rowcount
        return renewed == 1

    def holds(self, table: sa.Table, work_id: str, claim: str) -> bool:
        """True while the work is unfinished and held under `claim` (checked before a
        replay runs: another process may have finished it or taken it over meanwhile)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(table.c.claim_token)
                .where(_work_row(table, work_id))
                .where(table.c.claim_token == claim)
                .where(table.c.processed_at.is_(None))
            ).first()
        return row is not None


def _work_row(table: sa.Table, work_id: str) -> Any:
    """The WHERE clause of one recorded message or Stripe event, by its real id."""
    if table is inbound_messages:
        return inbound_messages.c.message_id == digest(work_id)
    return stripe_events.c.event_id == work_id
