"""The index of paid orders: what the shop ships, delivers and refunds.

Written only from verified Stripe events (connectors/stripe/webhook.py): a Checkout Session
paid for an order (the first one, the one that confirms it) adds the order; each
`charge.refunded` raises its cumulative refund. Nothing a customer sends reaches it. The
operator's requests (connectors/orders/) read it and move its fulfilment state with a
compare-and-set, so two operators (or replicas) cannot both move one order.

Customers are sealed like everywhere else, and so are tracking links (a carrier's page shows
where a parcel goes); operators see an order id and a log reference, never a number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from connectors.storage.schema import paid_orders, refund_totals
from connectors.storage.sealing import Sealer, binding, row_identity
from shop_contract.fulfilment import Fulfilment

logger = logging.getLogger(__name__)

# What `list --status …` filters by: waiting to ship, on its way, delivered, refunded in full,
# every confirmed one; and paid at Stripe but never confirmed by the bot (a cancelled order
# paid and refunded automatically, a payment that did not match its order, an order the
# conversation does not hold), for the shop to look at.
LISTINGS = ("paid", "shipped", "delivered", "refunded", "all", "unconfirmed")
MAX_LISTED = 500


@dataclass(frozen=True)
class PaidOrder:
    """One order as the index holds it."""

    order_id: str
    customer_id: str
    checkout_session_id: str
    payment_intent: str | None
    currency: str
    amount: int
    amount_refunded: int
    fulfilment: Fulfilment
    carrier: str | None
    tracking_url: str | None
    paid_at: float
    updated_at: float
    confirmed: bool = False
    subscription: str | None = None  # the Subscription the session started
    revision: int = 0  # raised by each move (connectors/storage/schema.py)

    @property
    def refundable(self) -> int:
        """What is left to refund, in minor units."""
        return max(0, self.amount - self.amount_refunded)

    @property
    def wholly_refunded(self) -> bool:
        """All that was charged is refunded (a free order, nothing charged, is not)."""
        return self.amount > 0 and self.amount_refunded >= self.amount


class PaidOrders:
    """The paid_orders table."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def record_paid(
        self,
        customer_id: str,
        order_id: str,
        session_id: str,
        payment_intent: str | None,
        currency: str,
        amount: int,
        subscription: str | None = None,
    ) -> bool:
        """Adds an order paid through `session_id`; False when it was indexed already (a
        re-delivered or replayed event) or its id is another customer's (logged)."""
        now = time.time()
        customer = self.sealer.customer_columns(paid_orders, order_id, customer_id)
        try:
            with self.engine.begin() as connection:
                refunded_before = (
                    connection.execute(
                        sa.select(refund_totals.c.amount_refunded).where(
                            refund_totals.c.payment_intent == payment_intent
                        )
                    ).scalar()
                    if payment_intent is not None
                    else None
                )
                connection.execute(
                    paid_orders.insert().values(
                        order_id=order_id,
                        **customer,
                        checkout_session_id=session_id,
                        payment_intent=payment_intent,
                        subscription=subscription,
                        currency=currency.lower(),
                        amount=amount,
                        amount_refunded=refunded_before or 0,  # reported before the payment
                        fulfilment=Fulfilment.UNFULFILLED.value,
                        paid_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            with self.engine.connect() as connection:
                mine = connection.execute(
                    sa.select(paid_orders.c.order_id)
                    .where(paid_orders.c.order_id == order_id)
                    .where(self.sealer.owned_by(paid_orders, customer_id))
                ).first()
            if mine is None:
                logger.error(
                    "paid order %s not indexed: another customer's order has that id; "
                    "ship or refund it by hand",
                    order_id,
                )
            return False
        return True

    def note_refund_total(self, payment_intent: str, refunded_in_all: int) -> None:
        """Keeps the payment's cumulative refund (raised only), for an order indexed later."""
        now = time.time()
        raise_it = (
            refund_totals.update()
            .where(refund_totals.c.payment_intent == payment_intent)
            .where(refund_totals.c.amount_refunded < refunded_in_all)
            .values(amount_refunded=refunded_in_all, updated_at=now)
        )
        for _ in range(2):  # a concurrent first insert: raise that one
            with self.engine.begin() as connection:
                exists = connection.execute(
                    sa.select(refund_totals.c.payment_intent).where(
                        refund_totals.c.payment_intent == payment_intent
                    )
                ).first()
                if exists is not None:
                    connection.execute(raise_it)
                    return
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        refund_totals.insert().values(
                            payment_intent=payment_intent,
                            amount_refunded=refunded_in_all,
                            updated_at=now,
                        )
                    )
                return
            except IntegrityError:
                continue

    def by_payment_intent(self, payment_intent: str) -> PaidOrder | None:
        """The confirmed order paid through `payment_intent`, if indexed."""
        query = (
            sa.select(paid_orders)
            .where(paid_orders.c.payment_intent == payment_intent)
            .where(paid_orders.c.confirmed == sa.true())
        )
        return next(self._opened(query), None)

    def record_refunded(
        self, customer_id: str, order_id: str, payment_intent: str, refunded_in_all: int
    ) -> bool:
        """Raises the refund of the order's payment `payment_intent` to `refunded_in_all`
        (never lowers it: events arrive out of order); False when nothing changed (also for
        another payment of the order, a duplicate refunded apart)."""
        query = (
            paid_orders.update()
            .where(paid_orders.c.order_id == order_id)
            .where(paid_orders.c.payment_intent == payment_intent)
            .where(self.sealer.owned_by(paid_orders, customer_id))
            .where(paid_orders.c.amount_refunded < refunded_in_all)
            .values(amount_refunded=refunded_in_all, updated_at=time.time())
        )
        with self.engine.begin() as connection:
            changed: int = connection.execute(query).rowcount
        return changed == 1

    def confirm(self, customer_id: str, order_id: str, session_id: str) -> bool:
        """Marks the order confirmed: its conversation shows it paid by `session_id`."""
        query = (
            paid_orders.update()
            .where(paid_orders.c.order_id == order_id)
            .where(paid_orders.c.checkout_session_id == session_id)
            .where(self.sealer.owned_by(paid_orders, customer_id))
            .where(paid_orders.c.confirmed == sa.false())
            .values(confirmed=True, updated_at=time.time())
        )
        with self.engine.begin() as connection:
            changed: int = connection.execute(query).rowcount
        return changed == 1

    def get(self, order_id: str) -> PaidOrder | None:
        """The indexed order, or None (unknown, or its customer does not open)."""
        query = sa.select(paid_orders).where(paid_orders.c.order_id == order_id)
        return next(self._opened(query), None)

    def listing(self, status: str) -> list[PaidOrder]:
        """Orders in one of LISTINGS, oldest paid first (what waits longest comes first): at
        most MAX_LISTED + 1, the last one only saying there are more."""
        if status not in LISTINGS:
            raise ValueError(f"status must be one of {', '.join(LISTINGS)}")
        query = sa.select(paid_orders).order_by(paid_orders.c.paid_at).limit(MAX_LISTED + 1)
        if status == "unconfirmed":
            return list(self._opened(query.where(paid_orders.c.confirmed == sa.false())))
        query = query.where(paid_orders.c.confirmed == sa.true())
        not_refunded = sa.or_(
            paid_orders.c.amount_refunded < paid_orders.c.amount,
            paid_orders.c.amount == 0,  # free: nothing charged, nothing refunded
        )
        if status == "refunded":
            query = query.where(sa.not_(not_refunded))
        elif status != "all":
            wanted = Fulfilment.UNFULFILLED.value if status == "paid" else status
            query = query.where(paid_orders.c.fulfilment == wanted).where(not_refunded)
        return list(self._opened(query))

    def move(
        self,
        order: PaidOrder,
        state: Fulfilment,
        carrier: str | None = None,
        tracking_url: str | None = None,
    ) -> bool:
        """Records `order` (as read) marked `state`; False when the row changed since it was
        read (another request moved it first)."""
        now = time.time()
        values: dict[str, Any] = {
            "fulfilment": state.value,
            "updated_at": now,
            "revision": paid_orders.c.revision + 1,
        }
        mine = paid_orders.c.order_id == order.order_id
        with self.engine.begin() as connection:
            pseudonym = connection.execute(
                sa.select(paid_orders.c.customer_pseudonym).where(mine)
            ).scalar()
            if state == Fulfilment.SHIPPED:
                row = binding(order.order_id, pseudonym)
                sealed = self.sealer.seal(paid_orders, "tracking_url", row, tracking_url)
                values.update(carrier=carrier, tracking_url=sealed, shipped_at=now)
            else:
                values.update(delivered_at=now)
            query = (
                paid_orders.update()
                .where(mine)
                .where(paid_orders.c.fulfilment == order.fulfilment.value)
                .where(paid_orders.c.updated_at == order.updated_at)
                .values(**values)
            )
            changed: int = connection.execute(query).rowcount
        return changed == 1

    def _opened(self, query: Any) -> Iterator[PaidOrder]:
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        named = "paid order {.order_id}".format
        for row, customer_id in self.sealer.with_customers(paid_orders, rows, named):
            yield PaidOrder(
                row.order_id,
                customer_id,
                row.checkout_session_id,
                row.payment_intent,
                row.currency,
                row.amount,
                row.amount_refunded,
                Fulfilment(row.fulfilment),
                row.carrier,
                self.sealer.open(
                    paid_orders,
                    "tracking_url",
                    row_identity(paid_orders, row._mapping),
                    row.tracking_url,
                ),
                row.paid_at,
                row.updated_at,
                bool(row.confirmed),
                row.subscription,
                row.revision,
            )
