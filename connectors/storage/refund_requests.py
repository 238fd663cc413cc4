"""The refunds operators asked for, by order and Idempotency-Key (schema `refund_requests`).

A request is recorded before Stripe is called, with the amount it resolved to: a retry with
the same key refunds that amount again under the same Stripe key (Stripe replays it), even
when the index has meanwhile learnt of the first refund and "all that is left" would now be
less, or nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import refund_requests


@dataclass(frozen=True)
class RefundRequest:
    order_id: str
    request_key: str
    amount: int
    refund_id: str | None


class RefundRequests:
    """The refund_requests table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, order_id: str, request_key: str) -> RefundRequest | None:
        query = (
            sa.select(refund_requests)
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.request_key == request_key)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return RefundRequest(row.order_id, row.request_key, row.amount, row.refund_id)

    def record(self, order_id: str, request_key: str, amount: int) -> RefundRequest:
        """The request under this key: the one just recorded, or the one recorded first
        (a concurrent retry), whose amount wins."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    refund_requests.insert().values(
                        order_id=order_id,
                        request_key=request_key,
                        amount=amount,
                        created_at=time.time(),
                    )
                )
        except IntegrityError:
            pass
        recorded = self.get(order_id, request_key)
        if recorded is None:  # inserted or present: only a concurrent delete could do this
            raise RuntimeError(f"refund request of order {order_id} vanished")
        return recorded

    def unknown_outcome(self, order_id: str, since: float) -> str | None:
        """The key of a request of the order made after `since` that Stripe neither answered
        with a refund nor refused (lost on the way, or still running), if any."""
        query = (
            sa.select(refund_requests.c.request_key)
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.refund_id.is_(None))
            .where(refund_requests.c.refused.is_(False))
            .where(refund_requests.c.created_at >= since)
            .order_by(refund_requests.c.created_at)
            .limit(1)
        )
        with self.engine.connect() as connection:
            key = connection.execute(query).scalar()
        return None if key is None else str(key)

    def refused(self, order_id: str, request_key: str) -> None:
        """Notes that Stripe refused the request: nothing was refunded under it."""
        query = (
            refund_requests.update()
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.request_key == request_key)
            .where(refund_requests.c.refund_id.is_(None))
            .values(refused=True)
        )
        with self.engine.begin() as connection:
            connection.execute(query)

    def done(self, order_id: str, request_key: str, refund_id: str) -> None:
        """Notes Stripe's refund id for the request."""
        query = (
            refund_requests.update()
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.request_key == request_key)
            .values(refund_id=refund_id, refused=False)
        )
        with self.engine.begin() as connection:
            connection.execute(query)
