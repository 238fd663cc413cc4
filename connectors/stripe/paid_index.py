"""Feeding the index of paid orders (connectors/storage/paid_orders.py) from verified
Stripe events, before their turn runs, so the index is right whatever the turn does.

A paid Checkout Session indexes its order when it is the order's first paid session (the
one that confirms it; the claim is idempotent, so a replay after a crash indexes it all the
same); a second payment of the order is refunded by the action and never indexed. A
`charge.refunded` raises the order's cumulative refund, only for the order's own payment
(the refund of a duplicate payment names another PaymentIntent).
"""

from __future__ import annotations

import asyncio
import logging

from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from shop_contract.entities import (
    AMOUNT_REFUNDED,
    AMOUNT_TOTAL,
    CHECKOUT_SESSION_ID,
    CURRENCY,
    ORDER_ID,
    PAYMENT_INTENT,
)
from shop_contract.intents import PAYMENT_SUCCEEDED, REFUNDED

logger = logging.getLogger(__name__)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def index_paid(store: ConnectorStore, mapped: EventIntent) -> None:
    """Adds the order a paid session confirms (synchronous: run in a thread)."""
    entities = mapped.entities
    order_id, session_id = entities.get(ORDER_ID), entities.get(CHECKOUT_SESSION_ID)
    amount, currency = _int(entities.get(AMOUNT_TOTAL)), entities.get(CURRENCY)
    if not isinstance(order_id, str) or not isinstance(session_id, str):
        return
    if amount is None or not isinstance(currency, str):
        logger.warning("paid order %s not indexed: the session has no amount", order_id)
        return
    if not store.stripe.claim_order_payment(mapped.customer_id, order_id, session_id):
        return  # a second payment of the order: refunded by the action
    payment_intent = entities.get(PAYMENT_INTENT)
    store.paid_orders.record_paid(
        mapped.customer_id,
        order_id,
        session_id,
        payment_intent if isinstance(payment_intent, str) else None,
        currency,
        amount,
    )


def index_refund(store: ConnectorStore, mapped: EventIntent) -> None:
    """Raises the order's cumulative refund (synchronous: run in a thread)."""
    order_id = mapped.entities.get(ORDER_ID)
    refunded = _int(mapped.entities.get(AMOUNT_REFUNDED))
    payment_intent = mapped.entities.get(PAYMENT_INTENT)
    if isinstance(order_id, str) and refunded is not None and isinstance(payment_intent, str):
        store.paid_orders.record_refunded(mapped.customer_id, order_id, payment_intent, refunded)


async def index_event(store: ConnectorStore, mapped: EventIntent) -> None:
    """What the event changes in the index, if anything."""
    if mapped.intent == PAYMENT_SUCCEEDED and mapped.fulfilment_key:
        await asyncio.to_thread(index_paid, store, mapped)
    elif mapped.intent == REFUNDED:
        await asyncio.to_thread(index_refund, store, mapped)
