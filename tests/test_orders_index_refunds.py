"""The index of paid orders learns every refund of an order's payment: one Stripe reports
before the payment's own event (retries and replays come in any order), and one of a
recovered copy's charge, which carries none of our metadata. An order refunded in full is
neither listed to ship nor shipped, in the index or in the conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from actions.orders.model import Order
from actions.orders.states import InvalidOrderMove
from connectors.orders.desk import OrdersDesk
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.paid_index import index_event
from connectors.stripe.webhook import StripeWebhook
from shop_contract.catalog import Catalog
from shop_contract.fulfilment import Fulfilment
from shop_contract.intents import REFUNDED
from tests.support.paid_orders import CUSTOMER, ORDER, no_turn, paid, refunded

TRACKING = "https://track.example/1"


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'orders.db'}")


def test_a_refund_reported_before_the_payment_is_applied_when_it_is_indexed(
    store: ConnectorStore,
) -> None:
    refunded(store, 400)
    refunded(store, 1000)
    refunded(store, 400)  # an older event, late: lowers nothing
    paid(store)
    order = store.paid_orders.get(ORDER)
    assert order is not None and (order.amount_refunded, order.wholly_refunded) == (1000, True)
    assert store.paid_orders.listing("paid") == []
    assert [o.order_id for o in store.paid_orders.listing("refunded")] == [ORDER]
    with pytest.raises(Exception, match="refunded in full") as refused:
        asyncio.run(OrdersDesk(store, None, no_turn).ship(ORDER, "DHL", TRACKING))  # type: ignore[arg-type]
    assert getattr(refused.value, "status", None) == 409


def charge_refunded_without_metadata(payment_intent: str, in_all: int) -> dict[str, Any]:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": payment_intent,
        "amount": 1000,
        "amount_refunded": in_all,
        "currency": "eur",
        "metadata": {},
    }
    return {"id": "evt_1", "type": "charge.refunded", "data": {"object": charge}}


def test_a_refund_without_our_metadata_finds_its_order_by_payment(store: ConnectorStore) -> None:
    paid(store)
    webhook = StripeWebhook(("whsec_x",), store, None, None, None)  # type: ignore[arg-type]
    mapped = asyncio.run(webhook.resolve(charge_refunded_without_metadata("pi_1", 600)))
    assert isinstance(mapped, EventIntent)
    assert (mapped.customer_id, mapped.intent, mapped.entities["order_id"]) == (
        CUSTOMER,
        REFUNDED,
        ORDER,
    )
    asyncio.run(index_event(store, mapped))
    order = store.paid_orders.get(ORDER)
    assert order is not None and order.amount_refunded == 600
    stranger = asyncio.run(webhook.resolve(charge_refunded_without_metadata("pi_other", 600)))
    assert not isinstance(stranger, EventIntent)  # no order paid through it: skipped


def test_a_refund_without_metadata_before_the_payment_is_kept(store: ConnectorStore) -> None:
    """A recovered copy's charge refunded in full before its paid event came: skipped for
    now (no order to tell), but its total is applied once the order is indexed."""
    webhook = StripeWebhook(("whsec_x",), store, None, None, None)  # type: ignore[arg-type]
    early = asyncio.run(webhook.resolve(charge_refunded_without_metadata("pi_1", 1000)))
    assert not isinstance(early, EventIntent)
    paid(store)
    order = store.paid_orders.get(ORDER)
    assert order is not None and order.amount_refunded == 1000 and order.wholly_refunded


def test_the_conversation_never_ships_an_order_refunded_in_full(catalog: Catalog) -> None:
    order = Order.start(catalog, {"espresso-beans": 2}).with_link("cs_1", "https://pay/1")
    order = order.paid_by("cs_1", "pi_1").with_refunds(order.total, order.total)
    with pytest.raises(InvalidOrderMove):
        order.fulfilled(Fulfilment.SHIPPED, "DHL", TRACKING)
    with pytest.raises(InvalidOrderMove):
        order.fulfilled(Fulfilment.DELIVERED)
