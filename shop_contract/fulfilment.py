"""Fulfilment by the shop: an order's delivery state, beside its payment state.

The connector checks an operator's request against these moves before it records it
(connectors/orders/), and the action that tells the customer moves the order in the slots
by the same table (actions/fulfilment_actions.py): one state machine for both processes.

Forward only. A shipped order may be marked shipped again, to correct its carrier or
tracking link (the customer is told the new one); an order the shop handed over in person
may go straight to delivered. Nothing leaves `delivered`. Refunds are the payment's side
(actions/orders/states.py) and do not move the fulfilment state.
"""

from __future__ import annotations

from enum import Enum
from urllib.parse import urlsplit

# The conversation's slots the connector reads to see whether the bot confirmed a payment:
# every order's record (slot form) by id, and in it the Checkout Session that paid it.
ORDERS_SLOT = "orders"
PAID_SESSION_SLOT = "order_paid_session"
ORDER_STATUS_SLOT = "order_status"
CONFIRMED_STATUSES = ("paid", "partially_refunded", "refunded")  # actions/orders/states.py

MAX_CARRIER_CHARACTERS = 64
MAX_TRACKING_URL_CHARACTERS = 512


class Fulfilment(str, Enum):
    """Where a paid order stands with the shop. The values are slot and column values."""

    UNFULFILLED = "unfulfilled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


FULFILMENT_MOVES: dict[Fulfilment, frozenset[Fulfilment]] = {
    Fulfilment.UNFULFILLED: frozenset({Fulfilment.SHIPPED, Fulfilment.DELIVERED}),
    Fulfilment.SHIPPED: frozenset({Fulfilment.SHIPPED, Fulfilment.DELIVERED}),
    Fulfilment.DELIVERED: frozenset(),
}


def can_fulfil(current: Fulfilment, wanted: Fulfilment) -> bool:
    """Whether an order in `current` may be marked `wanted`."""
    return wanted in FULFILMENT_MOVES[current]


def checked_carrier(text: object) -> str:
    """The carrier's name, trimmed; ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("carrier is required, e.g. DHL")
    name = text.strip()
    if len(name) > MAX_CARRIER_CHARACTERS:
        raise ValueError(f"carrier: at most {MAX_CARRIER_CHARACTERS} characters")
    if not name.isprintable():
        raise ValueError("carrier: one line of printable text")
    return name


def checked_tracking_url(url: object) -> str:
    """The tracking link: an https address with a host, no spaces; ValueError otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("tracking URL is required (https://…)")
    link = url.strip()
    if len(link) > MAX_TRACKING_URL_CHARACTERS:
        raise ValueError(f"tracking URL: at most {MAX_TRACKING_URL_CHARACTERS} characters")
    try:
        parts = urlsplit(link)
        secure = parts.scheme == "https" and bool(parts.hostname)
    except ValueError:
        secure = False
    if not secure or not link.isprintable() or " " in link:
        raise ValueError("tracking URL must be an https:// address")
    return link
