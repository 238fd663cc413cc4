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


class RefundPending(Exception):
    """Another key's refund of the order has an unknown outcome (`key`; None when it was
    settled just now: look again)."""

    def __init__(self, key: str | None) -> None:
        super().__init__(key)
        self.key = key


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

    def record(self, order_id: str, request_key: str, amount: int, since: float) -> RefundRequest:
        """The request under this key: the one just recorded, or the one recorded first (a
        concurrent retry), whose amount wins. RefundPending when another key's request of
        the order, last sent after `since`, has an unknown outcome: the unique
        pending_order_id decides between requests made at once."""
        self._release_stale(order_id, since)
        now = time.time()
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    refund_requests.insert().values(
                        order_id=order_id,
                        request_key=request_key,
                        amount=amount,
                        created_at=now,
                        attempted_at=now,
                        pending_order_id=order_id,
                    )
                )
        except IntegrityError:
            pass
        recorded = self.get(order_id, request_key)
        if recorded is None:
            raise RefundPending(self.unknown_outcome(order_id))
        return recorded

    def claim(self, order_id: str, request_key: str, since: float) -> None:
        """A retry of an unanswered request is about to be sent: it is the order's request
        with an unknown outcome again, from now. RefundPending when another key's is (last
        sent after `since`)."""
        self._release_stale(order_id, since)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    refund_requests.update()
                    .where(refund_requests.c.order_id == order_id)
                    .where(refund_requests.c.request_key == request_key)
                    .where(refund_requests.c.refund_id.is_(None))
                    .values(pending_order_id=order_id, attempted_at=time.time())
                )
        except IntegrityError:
            raise RefundPending(self.unknown_outcome(order_id)) from None

    def _release_stale(self, order_id: str, since: float) -> None:
        """A request last sent before `since` no longer blocks the order's other keys (its
        own retry still looks for its refund at Stripe first: OrdersDesk.refund)."""
        with self.engine.begin() as connection:
            connection.execute(
                refund_requests.update()
                .where(refund_requests.c.pending_order_id == order_id)
                .where(sa.func.coalesce(refund_requests.c.attempted_at, 0.0) < since)
                .values(pending_order_id=None)
            )

    def unknown_outcome(self, order_id: str) -> str | None:
        """The key of the order's request that Stripe neither answered with a refund nor
        refused (lost on the way, or still running), if any."""
        query = sa.select(refund_requests.c.request_key).where(
            refund_requests.c.pending_order_id == order_id
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
            .values(refused=True, pending_order_id=None)
        )
        with self.engine.begin() as connection:
            connection.execute(query)

    def done(self, order_id: str, request_key: str, refund_id: str) -> None:
        """Notes Stripe's refund id for the request."""
        query = (
            refund_requests.update()
            .where(refund_requests.c.order_id == order_id)
            .where(refund_requests.c.request_key == request_key)
            .values(refund_id=refund_id, refused=False, pending_order_id=None)
        )
        with self.engine.begin() as connection:
            connection.execute(query)
