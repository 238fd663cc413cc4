"""How the conversation keeps its orders in slots.

The order being discussed lives in the conversation's slots (`order_*`,
`checkout_session_id`, `payment_link`). Every order the customer has had is also kept, in the
same slot form, in one `orders` slot keyed by order id (at most ORDERS_KEPT; finished orders
are dropped first, see `with_order`): a Stripe event for an order that was replaced,
cancelled or expired meanwhile still finds it there.
One slot keyed by id, rather than a slot per order or a list, because events look orders up
by id and a record is replaced whole when its order changes.
"""

from __future__ import annotations

from typing import Any, Mapping

from actions.orders.model import Order
from actions.orders.states import FINISHED_STATES, OrderStatus
from shop_contract.fulfilment import ORDERS_SLOT as SHARED_ORDERS_SLOT

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
    "order_customer",
    "order_refunded",
    "order_destination",
    "order_shipping",
    "order_followed_up",
    "order_recovery_sent",
    "order_reminded",
    "order_fulfilment",
    "order_carrier",
    "order_tracking_url",
)
ORDERS_SLOT = SHARED_ORDERS_SLOT  # the connector reads it (connectors/stripe/paid_index.py)
LEGACY_PAST_ORDERS_SLOT = "past_orders"  # read only: finished orders before `orders` existed
ORDERS_KEPT = 20


def cleared_order_slots() -> dict[str, Any]:
    """Slot values for 'no current order'."""
    return {name: None for name in ORDER_SLOTS}


def with_order(orders: Mapping[str, Any] | None, order: Order) -> dict[str, Any]:
    """The `orders` slot with `order`'s record replaced (it becomes the newest), bounded.

    Over ORDERS_KEPT, the oldest finished orders (cancelled or wholly refunded) go first,
    then the oldest other orders; an order paying a live subscription (paid, not wholly
    refunded, a Subscription set) goes last, since that subscription's renewals and
    failures keep coming for years and are told through its record. A finished order's
    record keeps no delivery address (nothing will ship); open and paid orders keep
    theirs, for shipping.
    """
    kept = {key: record for key, record in (orders or {}).items() if key != order.id}
    record = order.to_slots()
    if _is_finished(record):
        record["order_delivery"] = None
    kept[order.id] = record
    while len(kept) > ORDERS_KEPT:
        finished = [key for key, held in kept.items() if _is_finished(held)]
        others = [key for key, held in kept.items() if not _is_live_subscription(held)]
        del kept[(finished or others or list(kept))[0]]
    return kept


_LIVE = frozenset({OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value})


def _is_live_subscription(record: Any) -> bool:
    """True for the record of a paid order that started a Subscription."""
    return (
        isinstance(record, dict)
        and record.get("order_status") in _LIVE
        and bool(record.get("order_subscription"))
    )


_FINISHED = frozenset(status.value for status in FINISHED_STATES)


def _is_finished(record: Any) -> bool:
    """True for the record of a cancelled (never paid) or wholly refunded order."""
    return isinstance(record, dict) and record.get("order_status") in _FINISHED


def orders_in(value: Any) -> dict[str, Order]:
    """The orders an `orders` slot value holds, by id, oldest first."""
    held = value if isinstance(value, dict) else {}
    found = (Order.from_slots(record) for record in held.values() if isinstance(record, dict))
    return {order.id: order for order in found if order is not None}
