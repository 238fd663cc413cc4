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

    def done(self, order_id: str, request_key: str, refund_id: str) -> None:
        """Notes Stripe's refund id for the request."""
        query = (
            refund_requests.update()
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.request_key == request_key)
            .values(refund_id=refund_id)
        )
        with self.engine.begin() as connection:
            connection.execute(query)
