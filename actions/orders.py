"""The order model: its states, the moves allowed between them, and its slot form.

The order being discussed lives in the conversation's slots (`order_*`,
`checkout_session_id`, `payment_link`). Every order the customer has had is also kept, in the
same slot form, in one `orders` slot keyed by order id (at most ORDERS_KEPT; finished orders
are dropped first, see `with_order`): a Stripe event for an order that was replaced,
cancelled or expired meanwhile still finds it there.
One slot keyed by id, rather than a slot per order or a list, because events look orders up
by id and a record is replaced whole when its order changes. Every change goes through
`Order.moved_to`, so an out-of-order event can never move an order backwards
(an `expired` arriving after `paid` is refused).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Mapping

from shop_contract.catalog import Catalog, Product

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
    "order_sessions",
    "order_payment_intent",
    "order_paid_session",
    "order_subscription",
    "order_refunded",
)
ORDERS_SLOT = "orders"
LEGACY_PAST_ORDERS_SLOT = "past_orders"  # read only: finished orders before `orders` existed
ORDERS_KEPT = 20
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
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


_OPEN = {
    OrderStatus.DRAFT,
    OrderStatus.AWAITING_PAYMENT,
    OrderStatus.PAYMENT_FAILED,
    OrderStatus.EXPIRED,
}
_PAID = {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
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


def new_order_id(flow_token: str | None = None) -> str:
    """A short id customers can read out: ORD-XXXXXXXX. Random (unguessable), or, for an
    order from a WhatsApp Flow, derived from its token (itself unguessable): a completion
    run again after a failed turn makes the same order id, hence the same Checkout Session
    (payments.idempotency_key), never a second live link."""
    if not flow_token:
        return "ORD-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    digest = int.from_bytes(hashlib.sha256(flow_token.encode()).digest()[:5], "big")
    return "ORD-" + "".join(_ID_ALPHABET[(digest >> (5 * i)) & 31] for i in range(8))


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
    """One of the customer's orders."""

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
    sessions: tuple[str, ...] = ()  # every Checkout Session this order had, oldest first
    payment_intent: str | None = None  # the payment that paid it (payment mode)
    paid_session: str | None = None  # the Checkout Session that paid it
    subscription: str | None = None  # the Subscription it started (subscription mode)
    refunded: int = 0  # minor units refunded so far

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
            new_order_id(flow_token),
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

    @property
    def is_paid(self) -> bool:
        """Money was taken for it (whether or not some was refunded since)."""
        return self.paid_session is not None or self.status in _PAID

    @property
    def awaits_payment(self) -> bool:
        """Open with a payment link that may still be live."""
        return self.is_open and self.checkout_session_id is not None

    def had_session(self, session_id: str) -> bool:
        """True when `session_id` is one of this order's Checkout Sessions."""
        return session_id == self.checkout_session_id or session_id in self.sessions

    def with_link(self, session_id: str, url: str) -> Order:
        """Awaiting payment through a new Checkout Session (remembered with the older ones)."""
        sessions = self.sessions if session_id in self.sessions else (*self.sessions, session_id)
        return self.moved_to(
            OrderStatus.AWAITING_PAYMENT,
            checkout_session_id=session_id,
            payment_link=url,
            sessions=sessions,
        )

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

    def paid_by(
        self, session_id: str, payment_intent: str | None, subscription: str | None = None
    ) -> Order:
        """Paid through this Checkout Session (and PaymentIntent, or the Subscription it
        started); InvalidOrderMove if it cannot be (already paid)."""
        return self.moved_to(
            OrderStatus.PAID,
            paid_session=session_id,
            payment_intent=payment_intent,
            subscription=subscription,
        )

    def with_refunds(self, refunded_in_all: int, charged: int) -> Order:
        """After refunds adding up to `refunded_in_all` of the `charged` amount: `refunded`
        once all of it is, else `partially_refunded` holding the sum."""
        full = refunded_in_all >= charged
        status = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        return self.moved_to(status, refunded=refunded_in_all)

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
            "order_sessions": list(self.sessions),
            "order_payment_intent": self.payment_intent,
            "order_paid_session": self.paid_session,
            "order_subscription": self.subscription,
            "order_refunded": self.refunded,
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
            sessions=tuple(str(s) for s in slots.get("order_sessions") or ()),
            payment_intent=slots.get("order_payment_intent"),
            paid_session=slots.get("order_paid_session"),
            subscription=slots.get("order_subscription"),
            refunded=int(slots.get("order_refunded") or 0),
        )

    @classmethod
    def from_legacy_record(cls, record: Mapping[str, Any]) -> Order:
        """An order from a `past_orders` record (kept before the `orders` slot existed)."""
        return cls(
            id=str(record["order_id"]),
            status=OrderStatus(record["status"]),
            lines=tuple(OrderLine.from_slot(raw) for raw in record.get("items") or []),
            currency=str(record.get("currency") or ""),
            flow_token=record.get("flow_token"),
        )


def cleared_order_slots() -> dict[str, Any]:
    """Slot values for 'no current order'."""
    return {name: None for name in ORDER_SLOTS}


def with_order(orders: Mapping[str, Any] | None, order: Order) -> dict[str, Any]:
    """The `orders` slot with `order`'s record replaced (it becomes the newest), bounded.

    Over ORDERS_KEPT, the oldest finished orders (cancelled or wholly refunded) go first:
    an open order, or one paid and not wholly refunded, is dropped only when nothing
    finished is left. A finished order's record keeps no delivery address (nothing will
    ship); open and paid orders keep theirs, for shipping.
    """
    kept = {key: record for key, record in (orders or {}).items() if key != order.id}
    record = order.to_slots()
    if _is_finished(record):
        record["order_delivery"] = None
    kept[order.id] = record
    while len(kept) > ORDERS_KEPT:
        finished = [key for key, held in kept.items() if _is_finished(held)]
        del kept[finished[0] if finished else next(iter(kept))]
    return kept


_FINISHED = frozenset({OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value})


def _is_finished(record: Any) -> bool:
    """True for the record of a cancelled (never paid) or wholly refunded order."""
    return isinstance(record, dict) and record.get("order_status") in _FINISHED


def orders_in(value: Any) -> dict[str, Order]:
    """The orders an `orders` slot value holds, by id, oldest first."""
    held = value if isinstance(value, dict) else {}
    found = (Order.from_slots(record) for record in held.values() if isinstance(record, dict))
    return {order.id: order for order in found if order is not None}


def check_quantity(product: Product, quantity: int) -> None:
    """Raises ValueError when `quantity` is outside 1..product.max_quantity."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValueError(f"quantity must be a whole number, got {quantity!r}")
    if not 1 <= quantity <= product.max_quantity:
        raise ValueError(f"{product.name}: quantity must be between 1 and {product.max_quantity}")
