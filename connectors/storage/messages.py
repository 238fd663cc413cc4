"""WhatsApp messages: inbound ones recorded once (Meta re-delivers), the customers' last
inbound time (the 24-hour window), outbound ones with the delivery statuses Meta reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import customers, inbound_messages, outbound_messages
from connectors.storage.sealing import Sealer, binding, digest, row_identity

# Later statuses win; an out-of-order 'sent' never overwrites 'read'.
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class OutboundRecord:
    """A message we sent, opened: to whom (the real id), what kind, its body if kept."""

    message_id: str
    customer_id: str
    kind: str
    body: str | None
    status: str


class MessageRecords:
    """The tables of inbound and outbound messages and of customers."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def record_inbound(
        self,
        message_id: str,
        customer_id: str,
        now: float | None = None,
        payload: str | None = None,
        claim: str | None = None,
    ) -> bool:
        """Records a message id, held under `claim` by this process; False for a re-delivery."""
        at = now or time.time()
        stored_id = digest(message_id)
        customer = self.sealer.customer_columns(inbound_messages, stored_id, customer_id)
        bound_to = binding(stored_id, customer["customer_pseudonym"])
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    inbound_messages.insert().values(
                        message_id=stored_id,
                        **customer,
                        received_at=at,
                        payload=self.sealer.seal(inbound_messages, "payload", bound_to, payload),
                        claimed_at=at,
                        claim_token=claim,
                    )
                )
        except IntegrityError:
            return False
        return True

    def mark_processed(self, message_id: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                inbound_messages.update()
                .where(inbound_messages.c.message_id == digest(message_id))
                .values(processed_at=time.time())
            )

    def touch_customer(self, customer_id: str, at: float) -> None:
        """Remembers the customer's latest inbound time (never moves it backwards)."""
        pseudonym = self.sealer.keys.pseudonym(customer_id)
        row = customers.c.customer_pseudonym == pseudonym
        with self.engine.begin() as connection:
            updated = connection.execute(
                customers.update()
                .where(row)
                .where(customers.c.last_inbound_at < at)
                .values(last_inbound_at=at)
            ).rowcount
            if updated:
                return
            exists = connection.execute(
                sa.select(customers.c.customer_pseudonym).where(row)
            ).first()
            if exists is None:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            customers.insert().values(
                                **self.sealer.customer_columns(customers, pseudonym, customer_id),
                                last_inbound_at=at,
                            )
                        )
                except IntegrityError:
                    pass  # a concurrent first message won; its time is as good

    def last_inbound_at(self, customer_id: str) -> float | None:
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(sa.func.max(customers.c.last_inbound_at)).where(
                    self.sealer.owned_by(customers, customer_id)
                )
            ).scalar()
        return float(value) if value is not None else None

    def record_outbound(
        self, message_id: str, customer_id: str, kind: str, body: str | None = None
    ) -> None:
        stored_id = digest(message_id)
        customer = self.sealer.customer_columns(outbound_messages, stored_id, customer_id)
        bound_to = binding(stored_id, customer["customer_pseudonym"])
        with self.engine.begin() as connection:
            connection.execute(
                outbound_messages.insert().values(
                    message_id=stored_id,
                    **customer,
                    kind=kind,
                    body=self.sealer.seal(outbound_messages, "body", bound_to, body),
                    sent_at=time.time(),
                    status="accepted",
                )
            )

    def record_status(
        self,
        message_id: str,
        status: str,
        at: float,
        error_code: int | None = None,
        error_title: str | None = None,
    ) -> OutboundRecord | None:
        """Applies a delivery status; returns the message's record when the status changed it.

        The change is a conditional update on the status that was read: of two replicas
        handling statuses of one message at once (or a status delivered twice), exactly one
        moves it to `failed`, so what follows a failure (the fallback) happens once.
        """
        while True:
            with self.engine.begin() as connection:
                row = _outbound_row(connection, message_id)
                if row is None:
                    return None
                if STATUS_RANK.get(status, -1) <= STATUS_RANK.get(row.status, -1):
                    return None
                changed = connection.execute(
                    outbound_messages.update()
                    .where(outbound_messages.c.message_id == row.message_id)
                    .where(outbound_messages.c.status == row.status)
                    .values(
                        status=status, status_at=at, error_code=error_code, error_title=error_title
                    )
                ).rowcount
            if changed:
                return self._outbound_record(message_id, row, status)
            # another status got there first: read it again and compare ranks again

    def outbound(self, message_id: str) -> OutboundRecord | None:
        """The record of a message we sent, by its real id, or None."""
        with self.engine.connect() as connection:
            row = _outbound_row(connection, message_id)
        if row is None:
            return None
        return self._outbound_record(message_id, row, row.status)

    def _outbound_record(self, message_id: str, row: Any, status: str) -> OutboundRecord:
        bound_to = row_identity(outbound_messages, row._mapping)
        opened = self.sealer.open
        return OutboundRecord(
            message_id,
            str(opened(outbound_messages, "customer_sealed", bound_to, row.customer_sealed)),
            row.kind,
            opened(outbound_messages, "body", bound_to, row.body),
            status,
        )


def _outbound_row(connection: Connection, message_id: str) -> Any:
    """The row of a message we sent, by its real id, or None."""
    return connection.execute(
        sa.select(outbound_messages).where(outbound_messages.c.message_id == digest(message_id))
    ).first()
