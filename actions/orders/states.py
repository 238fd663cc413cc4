"""An order's states and the only moves allowed between them: the state machine as data.

Every change of state goes through `Order.moved_to`, which consults `ALLOWED_MOVES`, so an
out-of-order event can never move an order backwards (an `expired` arriving after `paid` is
refused).
"""

from __future__ import annotations

from enum import Enum


class OrderStatus(str, Enum):
    """Where an order stands. The values are the slot values in domain.yml."""

    DRAFT = "draft"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


OPEN_STATES = frozenset(
    {
        OrderStatus.DRAFT,
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.PAYMENT_FAILED,
        OrderStatus.EXPIRED,
    }
)
PAID_STATES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})
# Nothing more will happen to it: cancelled before it was paid, or refunded in full.
FINISHED_STATES = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})
# Money taken is the truth: a payment confirms an order from any state that has not been paid,
# even one cancelled (or replaced by another order) a moment before the payment went through.
# Refunds only ever add up: a partly refunded order can be refunded further, never un-refunded.
ALLOWED_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.DRAFT: frozenset(
        {OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED, OrderStatus.PAID}
    ),
    OrderStatus.AWAITING_PAYMENT: frozenset(
        {
            OrderStatus.AWAITING_PAYMENT,
            OrderStatus.PAID,
            OrderStatus.PAYMENT_FAILED,
            OrderStatus.EXPIRED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.PAYMENT_FAILED: frozenset(
        {OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    ),
    OrderStatus.EXPIRED: frozenset(
        {OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID, OrderStatus.CANCELLED}
    ),
    OrderStatus.CANCELLED: frozenset({OrderStatus.PAID}),
    OrderStatus.PAID: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
    ),
    OrderStatus.REFUNDED: frozenset(),
}


class InvalidOrderMove(ValueError):
    """An order was asked to move to a state it cannot reach from where it is."""
