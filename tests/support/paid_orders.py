"""One paid order in the index of paid orders, and Stripe's refunds of it, fed in as the
connector feeds verified Stripe events (`index_event`): for the orders desk's tests."""

from __future__ import annotations

import asyncio

from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.paid_index import index_event
from shop_contract.intents import PAYMENT_SUCCEEDED, REFUNDED

CUSTOMER = "15550831234"
ORDER = "ORD-PAID0001"
PAYMENT_INTENT = "pi_1"


async def no_turn(*_: object) -> None:
    """The desk's customer turn, where no conversation is run."""
    return None


def paid_event(
    order_id: str = ORDER,
    amount: int = 1000,
    payment_intent: str | None = PAYMENT_INTENT,
    subscription: str | None = None,
) -> EventIntent:
    """Stripe's paid Checkout Session `cs_<order_id>` for `order_id`, as the webhook maps it
    (a subscription's payment has no PaymentIntent of its own)."""
    session = f"cs_{order_id}"
    entities = {"order_id": order_id, "checkout_session_id": session, "amount_total": amount,
                "currency": "eur", **({"payment_intent": payment_intent} if payment_intent else {}),
                **({"subscription_id": subscription} if subscription else {})}  # fmt: skip
    return EventIntent(CUSTOMER, PAYMENT_SUCCEEDED, entities, fulfilment_key=session)


def paid(
    store: ConnectorStore,
    order_id: str = ORDER,
    amount: int = 1000,
    payment_intent: str | None = PAYMENT_INTENT,
    subscription: str | None = None,
) -> bool:
    """`order_id` paid and indexed; returns whether the bot's confirmation (recorded as its
    turn records it) took."""
    asyncio.run(index_event(store, paid_event(order_id, amount, payment_intent, subscription)))
    return store.paid_orders.confirm(CUSTOMER, order_id, f"cs_{order_id}")


def refunded(store: ConnectorStore, in_all: int, charged: int | None = None) -> None:
    """Stripe's `charge.refunded` for ORDER: `in_all` refunded so far (of `charged`)."""
    entities: dict[str, object] = {
        "order_id": ORDER, "payment_intent": PAYMENT_INTENT, "amount_refunded": in_all
    }  # fmt: skip
    if charged is not None:
        entities["amount"] = charged
    asyncio.run(index_event(store, EventIntent(CUSTOMER, REFUNDED, entities)))
