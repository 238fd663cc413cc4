"""The connector's tables on one engine, one repository per group of tables.

Constructing a ConnectorStore does no I/O: `connectors.storage.opening.open_store` makes
the engine, migrates the schema and checks that what is stored opens with the keys.
Calls are synchronous SQLAlchemy Core; async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.storage.flow_claims import FlowClaims
from connectors.storage.handovers import Handovers
from connectors.storage.keys import KeyRing
from connectors.storage.leases import WorkLeases
from connectors.storage.messages import MessageRecords
from connectors.storage.outbox import Outbox
from connectors.storage.paid_orders import PaidOrders
from connectors.storage.refund_requests import RefundRequests
from connectors.storage.reminders import Reminders
from connectors.storage.schema import inbound_messages, outbox, stripe_events
from connectors.storage.sealing import Sealer
from connectors.storage.stripe_records import StripeRecords


class ConnectorStore:
    """The repositories of the connector's tables, sharing one engine and key ring."""

    def __init__(self, engine: Engine, keys: KeyRing) -> None:
        self.engine = engine
        self.keys = keys
        self.sealer = Sealer(keys)
        self.messages = MessageRecords(engine, self.sealer)
        self.flow_claims = FlowClaims(engine)
        self.stripe = StripeRecords(engine, self.sealer)
        self.leases = WorkLeases(engine, self.sealer)
        self.outbox = Outbox(engine, self.sealer)
        self.handovers = Handovers(engine, self.sealer)
        self.reminders = Reminders(engine, self.sealer)
        self.paid_orders = PaidOrders(engine, self.sealer)
        self.refund_requests = RefundRequests(engine)

    def health(self) -> dict[str, float | int]:
        """Backlog figures for the health route; raises when the database is unreachable."""
        now = time.time()
        figures: dict[str, float | int] = {}
        with self.engine.connect() as connection:
            for name, table in (("messages", inbound_messages), ("stripe_events", stripe_events)):
                pending = table.c.processed_at.is_(None)
                count, oldest = connection.execute(
                    sa.select(sa.func.count(), sa.func.min(table.c.received_at)).where(pending)
                ).one()
                figures[f"pending_{name}"] = int(count)
                figures[f"oldest_pending_{name}_seconds"] = round(now - oldest, 1) if oldest else 0
            for status in ("pending", "dead", "undeliverable"):
                figures[f"{status}_notifications"] = int(
                    connection.execute(
                        sa.select(sa.func.count()).where(outbox.c.status == status)
                    ).scalar_one()
                )
        return figures
