"""An order and its lines. Every change of state goes through `Order.moved_to`, which allows
only the moves in `states.ALLOWED_MOVES`.

`to_slots`/`from_slots` are the order's slot form: how the conversation holds the order being
discussed, and each record of the `orders` slot (see `records`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Mapping

from actions.orders.ids import new_order_id
from actions.orders.money import format_amount
from actions.orders.states import (
    ALLOWED_MOVES,
    OPEN_STATES,
    PAID_STATES,
    InvalidOrderMove,
    OrderStatus,
)
from shop_contract.catalog import Catalog, Product
from shop_contract.fulfilment import Fulfilment, can_fulfil


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
    customer: str | None = None  # the Stripe Customer that paid it (its portal opens as them)
    refunded: int = 0  # minor units refunded so far
    destination: str | None = None  # the delivery country (data/shop.yml) a typed order ships to
    shipping: int = 0  # what delivery to `destination` costs, fixed with the lines
    followed_up: bool = False  # its expired link got the one follow-up (actions/followup_actions)
    recovery_sent: bool = False  # that follow-up was Stripe's recovery URL: live for 30 days
    reminded: bool = False  # got the one reminder before a link expired (reminder_actions)
    fulfilment: Fulfilment = Fulfilment.UNFULFILLED  # the shop's side (shop_contract.fulfilment)
    carrier: str | None = None  # who carries it, once shipped
    tracking_url: str | None = None  # the carrier's https tracking link, once shipped

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
        if len(items) > catalog.max_lines:
            raise ValueError(f"an order holds at most {catalog.max_lines} different products")
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
    def subtotal(self) -> int:
        """The lines' amounts added up, before delivery."""
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        """What the customer pays: the lines and delivery."""
        return self.subtotal + self.shipping

    def line_of(self, product_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    @property
    def is_open(self) -> bool:
        """Not paid, cancelled or refunded: the customer may still pay or cancel it."""
        return self.status in OPEN_STATES

    @property
    def is_paid(self) -> bool:
        """Money was taken for it (whether or not some was refunded since)."""
        return self.paid_session is not None or self.status in PAID_STATES

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
        self,
        session_id: str,
        payment_intent: str | None,
        subscription: str | None = None,
        customer: str | None = None,
    ) -> Order:
        """Paid through this Checkout Session (and PaymentIntent, or the Subscription it
        started), as Stripe Customer `customer` when the session had one; InvalidOrderMove
        if it cannot be (already paid)."""
        return self.moved_to(
            OrderStatus.PAID,
            paid_session=session_id,
            payment_intent=payment_intent,
            subscription=subscription,
            customer=customer,
        )

    def with_refunds(self, refunded_in_all: int, charged: int) -> Order:
        """After refunds adding up to `refunded_in_all` of the `charged` amount: `refunded`
        once all of it is, else `partially_refunded` holding the sum."""
        full = refunded_in_all >= charged
        status = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
        return self.moved_to(status, refunded=refunded_in_all)

    def fulfilled(
        self, state: Fulfilment, carrier: str | None = None, tracking_url: str | None = None
    ) -> Order:
        """Marked shipped (with carrier and tracking link) or delivered by the shop;
        InvalidOrderMove unless it was paid, not refunded in full, and the move is forward
        (FULFILMENT_MOVES)."""
        refunded = self.status == OrderStatus.REFUNDED  # in full: nothing to send
        if not self.is_paid or refunded or not can_fulfil(self.fulfilment, state):
            raise InvalidOrderMove(
                f"order {self.id} cannot be marked {state.value} "
                f"({self.status.value}, {self.fulfilment.value})"
            )
        if state == Fulfilment.SHIPPED:
            return replace(self, fulfilment=state, carrier=carrier, tracking_url=tracking_url)
        return replace(self, fulfilment=state)

    def moved_to(self, status: OrderStatus, **changes: Any) -> Order:
        """A copy in `status` (with other fields changed); InvalidOrderMove if not allowed."""
        if not self.can_move_to(status):
            raise InvalidOrderMove(
                f"order {self.id} cannot move from {self.status.value} to {status.value}"
            )
        return replace(self, status=status, **changes)

    def summary(self, catalog: Catalog) -> str:
        """Multi-line text: one line per item, delivery when it ships somewhere, the total."""
        rows = []
        for line in self.lines:
            product = catalog.get(line.product_id)
            name = product.name if product else line.product_id
            rows.append(f"{line.quantity} × {name} — {format_amount(line.amount, self.currency)}")
        if self.destination:
            cost = format_amount(self.shipping, self.currency) if self.shipping else "free"
            rows.append(f"Delivery to {self.destination} — {cost}")
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
            "order_customer": self.customer,
            "order_refunded": self.refunded,
            "order_destination": self.destination,
            "order_shipping": self.shipping,
            "order_followed_up": self.followed_up,
            "order_recovery_sent": self.recovery_sent,
            "order_reminded": self.reminded,
            "order_fulfilment": self.fulfilment.value,
            "order_carrier": self.carrier,
            "order_tracking_url": self.tracking_url,
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
            customer=slots.get("order_customer"),
            refunded=int(slots.get("order_refunded") or 0),
            destination=slots.get("order_destination"),
            shipping=int(slots.get("order_shipping") or 0),
            followed_up=bool(slots.get("order_followed_up")),
            recovery_sent=bool(slots.get("order_recovery_sent")),
            reminded=bool(slots.get("order_reminded")),
            fulfilment=Fulfilment(slots.get("order_fulfilment") or Fulfilment.UNFULFILLED.value),
            carrier=slots.get("order_carrier"),
            tracking_url=slots.get("order_tracking_url"),
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


def check_quantity(product: Product, quantity: int) -> None:
    """Raises ValueError when `quantity` is outside 1..product.max_quantity."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValueError(f"quantity must be a whole number, got {quantity!r}")
    if not 1 <= quantity <= product.max_quantity:
        raise ValueError(f"{product.name}: quantity must be between 1 and {product.max_quantity}")
