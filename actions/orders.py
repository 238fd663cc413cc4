"""The order model: its states, the moves allowed between them, and its slot form.

An order lives in the conversation's slots (`order_*`, `checkout_session_id`,
`payment_link`); finished orders move to `past_orders`. Every change goes through
`Order.moved_to`, so an out-of-order event can never move an order backwards
(an `expired` arriving after `paid` is refused).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Mapping

from actions.catalog import Catalog, Product

ORDER_SLOTS = (
    "order_id",
    "order_status",
    "order_items",
    "order_total",
    "order_currency",
    "order_attempt",
    "order_attempt_at",
    "checkout_session_id",
    "payment_link",
    "order_flow_token",
    "order_delivery",
)
PAST_ORDERS_SLOT = "past_orders"
PAST_ORDERS_KEPT = 20
_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud without doubt
_ZERO_DECIMAL_CURRENCIES = frozenset({"jpy", "krw", "vnd", "clp", "isk"})
_CURRENCY_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£"}


class OrderStatus(str, Enum):
    """Where an order stands. The values are the slot values in domain.yml."""

    DRAFT = "draft"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


_OPEN = {
    OrderStatus.DRAFT,
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.PAYMENT_FAILED,
    OrderStatus.EXPIRED,
}
# Money taken is the truth: a payment confirms an order from any state that has not been paid,
# even one cancelled a moment before the payment went through.
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
    OrderStatus.PAID: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(),
}


class InvalidOrderMove(ValueError):
    """An order was asked to move to a state it cannot reach from where it is."""


def new_order_id() -> str:
    """A short, unguessable id customers can read out: ORD-XXXXXXXX."""
    return "ORD-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def format_amount(minor_units: int, currency: str) -> str:
    """1290, 'eur' -> '€12.90'; currencies without a symbol here -> '12.90 CHF'."""
    currency = currency.lower()
    if currency in _ZERO_DECIMAL_CURRENCIES:
        number = f"{minor_units:,}"
    else:
        number = f"{minor_units // 100:,}.{minor_units % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


@dataclass(frozen=True)
class OrderLine:
    """A product and how many, at the unit price it had when ordered."""

    product_id: str
    quantity: int
    unit_amount: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount

    def to_slot(self) -> dict[str, Any]:
        return {
            "product": self.product_id,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount,
        }

    @classmethod
    def from_slot(cls, raw: Mapping[str, Any]) -> OrderLine:
        return cls(str(raw["product"]), int(raw["quantity"]), int(raw["unit_amount"]))


@dataclass(frozen=True)
class Order:
    """The customer's current order."""

    id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    currency: str
    attempt: int = 1
    attempt_at: float = 0.0  # when this payment attempt began: fixes its link's expiry
    checkout_session_id: str | None = None
    payment_link: str | None = None
    flow_token: str | None = None  # the WhatsApp Flow it came from: one order per token
    delivery: Mapping[str, str] | None = None  # name and address, only when it ships

    @classmethod
    def start(
        cls,
        catalog: Catalog,
        items: Mapping[str, int],
        flow_token: str | None = None,
        delivery: Mapping[str, str] | None = None,
    ) -> Order:
        """A new draft order for {product id: quantity}; raises ValueError on a bad item."""
        if not items:
            raise ValueError("an order needs at least one product")
        lines = []
        for product_id, quantity in items.items():
            product = catalog.get(product_id)
            if product is None:
                raise ValueError(f"unknown product '{product_id}'")
            check_quantity(product, quantity)
            lines.append(OrderLine(product.id, quantity, product.unit_amount))
        return cls(
            new_order_id(),
            OrderStatus.DRAFT,
            tuple(lines),
            catalog.currency,
            attempt_at=time.time(),
            flow_token=flow_token,
            delivery=delivery,
        )

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def is_open(self) -> bool:
        """Not paid, cancelled or refunded: the customer may still pay or cancel it."""
        return self.status in _OPEN

    def can_move_to(self, status: OrderStatus) -> bool:
        return status in ALLOWED_MOVES[self.status]

    def next_attempt(self, now: float) -> Order:
        """The same order as a new payment attempt (new link, new idempotency key)."""
        return replace(
            self,
            attempt=self.attempt + 1,
            attempt_at=now,
            checkout_session_id=None,
            payment_link=None,
        )

    def moved_to(self, status: OrderStatus, **changes: Any) -> Order:
        """A copy in `status` (with other fields changed); InvalidOrderMove if not allowed."""
        if not self.can_move_to(status):
            raise InvalidOrderMove(
                f"order {self.id} cannot move from {self.status.value} to {status.value}"
            )
        return replace(self, status=status, **changes)

    def summary(self, catalog: Catalog) -> str:
        """Multi-line text: one line per item, then the total."""
        rows = []
        for line in self.lines:
            product = catalog.get(line.product_id)
            name = product.name if product else line.product_id
            rows.append(f"{line.quantity} × {name} — {format_amount(line.amount, self.currency)}")
        rows.append(f"Total: {format_amount(self.total, self.currency)}")
        return "\n".join(rows)

    def to_slots(self) -> dict[str, Any]:
        """The slot values that hold this order in the tracker."""
        return {
            "order_id": self.id,
            "order_status": self.status.value,
            "order_items": [line.to_slot() for line in self.lines],
            "order_total": self.total,
            "order_currency": self.currency,
            "order_attempt": self.attempt,
            "order_attempt_at": self.attempt_at,
            "checkout_session_id": self.checkout_session_id,
            "payment_link": self.payment_link,
            "order_flow_token": self.flow_token,
            "order_delivery": dict(self.delivery) if self.delivery else None,
        }

    def to_past_order(self) -> dict[str, Any]:
        """The compact record kept in `past_orders`."""
        return {
            "order_id": self.id,
            "status": self.status.value,
            "items": [line.to_slot() for line in self.lines],
            "total": self.total,
            "currency": self.currency,
            "flow_token": self.flow_token,
        }

    @classmethod
    def from_slots(cls, slots: Mapping[str, Any]) -> Order | None:
        """The order held in these slot values, or None when there is none."""
        order_id = slots.get("order_id")
        if not order_id:
            return None
        return cls(
            id=str(order_id),
            status=OrderStatus(slots.get("order_status") or OrderStatus.DRAFT.value),
            lines=tuple(OrderLine.from_slot(raw) for raw in slots.get("order_items") or []),
            currency=str(slots.get("order_currency") or ""),
            attempt=int(slots.get("order_attempt") or 1),
            attempt_at=float(slots.get("order_attempt_at") or 0.0),
            checkout_session_id=slots.get("checkout_session_id"),
            payment_link=slots.get("payment_link"),
            flow_token=slots.get("order_flow_token"),
            delivery=slots.get("order_delivery"),
        )


def cleared_order_slots() -> dict[str, Any]:
    """Slot values for 'no current order'."""
    return {name: None for name in ORDER_SLOTS}


def with_past_order(past_orders: list[Any] | None, order: Order) -> list[Any]:
    """`past_orders` with `order` appended (replacing an older record of it), newest last."""
    kept = [p for p in past_orders or [] if isinstance(p, dict) and p.get("order_id") != order.id]
    kept.append(order.to_past_order())
    return kept[-PAST_ORDERS_KEPT:]


def check_quantity(product: Product, quantity: int) -> None:
    """Raises ValueError when `quantity` is outside 1..product.max_quantity."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValueError(f"quantity must be a whole number, got {quantity!r}")
    if not 1 <= quantity <= product.max_quantity:
        raise ValueError(f"{product.name}: quantity must be between 1 and {product.max_quantity}")
