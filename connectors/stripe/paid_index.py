"""Feeding the index of paid orders (connectors/storage/paid_orders.py) from verified
Stripe events, before their turn runs, so the index is right whatever the turn does.

A paid Checkout Session indexes its order when it is the order's first paid session (the
one that confirms it; the claim is idempotent, so a replay after a crash indexes it all the
same); a second payment of the order is refunded by the action and never indexed. A
`charge.refunded` raises the order's cumulative refund, only for the order's own payment
(the refund of a duplicate payment names another PaymentIntent); it is also kept by
PaymentIntent, so a refund reported before the payment's own event is applied when the order
is indexed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from shop_contract.entities import (
    AMOUNT_REFUNDED,
    AMOUNT_TOTAL,
    CHECKOUT_SESSION_ID,
    CURRENCY,
    ORDER_ID,
    PAYMENT_INTENT,
    SUBSCRIPTION_ID,
)
from shop_contract.fulfilment import (
    CONFIRMED_STATUSES,
    ORDER_STATUS_SLOT,
    ORDERS_SLOT,
    PAID_SESSION_SLOT,
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
    payment_intent, subscription = entities.get(PAYMENT_INTENT), entities.get(SUBSCRIPTION_ID)
    store.paid_orders.record_paid(
        mapped.customer_id,
        order_id,
        session_id,
        payment_intent if isinstance(payment_intent, str) else None,
        currency,
        amount,
        subscription if isinstance(subscription, str) else None,
    )


def index_refund(store: ConnectorStore, mapped: EventIntent) -> None:
    """Raises the order's cumulative refund (synchronous: run in a thread)."""
    order_id = mapped.entities.get(ORDER_ID)
    refunded = _int(mapped.entities.get(AMOUNT_REFUNDED))
    payment_intent = mapped.entities.get(PAYMENT_INTENT)
    if refunded is None or not isinstance(payment_intent, str):
        return
    store.paid_orders.note_refund_total(payment_intent, refunded)  # the order may come later
    if isinstance(order_id, str):
        store.paid_orders.record_refunded(mapped.customer_id, order_id, payment_intent, refunded)


async def index_event(store: ConnectorStore, mapped: EventIntent) -> None:
    """What the event changes in the index, if anything."""
    if mapped.intent == PAYMENT_SUCCEEDED and mapped.fulfilment_key:
        await asyncio.to_thread(index_paid, store, mapped)
    elif mapped.intent == REFUNDED:
        await asyncio.to_thread(index_refund, store, mapped)


def paid_in_conversation(orders: Any, order_id: str, session_id: str) -> bool:
    """Whether the conversation's `orders` slot holds `order_id` paid by `session_id`: the
    bot checked the payment against the order and confirmed it."""
    record = orders.get(order_id) if isinstance(orders, dict) else None
    return (
        isinstance(record, dict)
        and record.get(PAID_SESSION_SLOT) == session_id
        and record.get(ORDER_STATUS_SLOT) in CONFIRMED_STATUSES
    )


async def confirm_paid(store: ConnectorStore, agent: Any, mapped: EventIntent) -> None:
    """After a paid session's turn (or on its replay): marks the indexed order confirmed when
    the customer's conversation shows it paid by this session. A payment the bot refused (a
    cancelled order's, refunded; one not matching its order; an order it does not hold)
    stays unconfirmed: listed apart, never shipped or refunded from the index."""
    order_id, session_id = mapped.entities.get(ORDER_ID), mapped.entities.get(CHECKOUT_SESSION_ID)
    if mapped.intent != PAYMENT_SUCCEEDED or not isinstance(order_id, str):
        return
    if not isinstance(session_id, str):
        return
    if not await shown_paid(agent, mapped.customer_id, order_id, session_id):
        logger.warning(
            "paid order %s left unconfirmed: the conversation does not show it paid by its "
            'session; see `make orders ARGS="list --status unconfirmed"`',
            order_id,
        )
        return
    await asyncio.to_thread(store.paid_orders.confirm, mapped.customer_id, order_id, session_id)


def real_tracker_store(agent: Any) -> Any:
    """The agent's tracker store under Rasa's wrappers: FailSafeTrackerStore answers None
    when the store fails, which would read as "not paid" and leave a paid order unconfirmed
    for good; the real store raises, so the event is replayed."""
    store = agent.tracker_store
    while getattr(store, "_tracker_store", None) is not None:
        store = store._tracker_store
    return store


async def shown_paid(agent: Any, customer_id: str, order_id: str, session_id: str) -> bool:
    """Whether the customer's conversation shows `order_id` paid by `session_id` (a store
    error raises)."""
    tracker = await real_tracker_store(agent).retrieve(customer_id)
    orders = tracker.get_slot(ORDERS_SLOT) if tracker is not None else None
    return paid_in_conversation(orders, order_id, session_id)


async def reconfirm(store: ConnectorStore, agent: Any, customer_id: str, order_id: str) -> bool:
    """Looks at the conversation again for an indexed order left unconfirmed (its turn's
    look may have missed, e.g. the store failing then): confirms it when it shows paid."""
    order = await asyncio.to_thread(store.paid_orders.get, order_id)
    if order is None or order.confirmed or order.customer_id != customer_id:
        return False
    if not await shown_paid(agent, customer_id, order_id, order.checkout_session_id):
        return False
    return await asyncio.to_thread(
        store.paid_orders.confirm, customer_id, order_id, order.checkout_session_id
    )
