"""The paid orders index: added once per order from a paid session, refunds only ever
raised, fulfilment moved by compare-and-set, listed by state, sealed (SQLite and
PostgreSQL). Export, erasure and sealing per row: tests/test_privacy.py."""

from __future__ import annotations

import sqlalchemy as sa

from connectors.storage.schema import paid_orders
from shop_contract.fulfilment import Fulfilment
from tests.storage.conftest import Backend

TRACKING = "https://track.example/1"


def test_an_order_is_indexed_once_and_only_for_its_customer(backend: Backend) -> None:
    store = backend.store()
    anna, boris = backend.customer_id("anna"), backend.customer_id("boris")
    order_id = f"ORD-{backend.tag}"
    assert store.paid_orders.record_paid(anna, order_id, "cs_1", "pi_1", "EUR", 2580)
    assert not store.paid_orders.record_paid(anna, order_id, "cs_1", "pi_1", "eur", 2580)
    assert not store.paid_orders.record_paid(boris, order_id, "cs_9", "pi_9", "eur", 1)
    found = backend.store().paid_orders.get(order_id)
    assert found is not None
    assert (found.customer_id, found.payment_intent, found.currency, found.amount) == (
        anna,
        "pi_1",
        "eur",
        2580,
    )
    assert (found.fulfilment, found.refundable, found.wholly_refunded) == (
        Fulfilment.UNFULFILLED,
        2580,
        False,
    )
    with store.engine.connect() as connection:
        sealed = connection.execute(
            sa.select(paid_orders.c.customer_sealed).where(paid_orders.c.order_id == order_id)
        ).scalar_one()
    assert anna not in sealed
    assert store.paid_orders.get("ORD-UNKNOWN") is None


def test_refunds_only_go_up_whatever_order_the_events_come_in(backend: Backend) -> None:
    store = backend.store()
    anna, boris = backend.customer_id("anna"), backend.customer_id("boris")
    order_id = f"ORD-{backend.tag}"
    store.paid_orders.record_paid(anna, order_id, "cs_1", "pi_1", "eur", 2580)
    assert store.paid_orders.record_refunded(anna, order_id, "pi_1", 1000)
    assert not store.paid_orders.record_refunded(anna, order_id, "pi_1", 500)  # an older event
    assert not store.paid_orders.record_refunded(boris, order_id, "pi_1", 2580)  # not theirs
    assert not store.paid_orders.record_refunded(anna, order_id, "pi_dup", 2580)  # a duplicate
    assert store.paid_orders.record_refunded(anna, order_id, "pi_1", 2580)
    refunded = store.paid_orders.get(order_id)
    assert refunded is not None and refunded.wholly_refunded and refunded.refundable == 0


def test_listings_and_moves(backend: Backend) -> None:
    store = backend.store()
    anna = backend.customer_id("anna")
    ids = [f"ORD-{backend.tag}-{n}" for n in range(5)]
    for order_id in ids:
        store.paid_orders.record_paid(
            anna, order_id, f"cs_{order_id}", f"pi_{order_id}", "eur", 1000
        )
    for order_id in ids[:4]:  # the bot confirmed these payments, not the last one
        assert store.paid_orders.confirm(anna, order_id, f"cs_{order_id}")
    assert not store.paid_orders.confirm(anna, ids[4], "cs_another")  # not the session indexed
    assert not store.paid_orders.confirm(backend.customer_id("ben"), ids[4], f"cs_{ids[4]}")
    store.paid_orders.record_refunded(anna, ids[3], f"pi_{ids[3]}", 1000)
    first = store.paid_orders.get(ids[0])
    assert first is not None
    assert store.paid_orders.move(first, Fulfilment.SHIPPED, "DHL", TRACKING)
    assert not store.paid_orders.move(first, Fulfilment.DELIVERED)  # read before the move
    second = store.paid_orders.get(ids[1])
    assert second is not None and store.paid_orders.move(second, Fulfilment.DELIVERED)

    def listed(status: str) -> list[str]:
        return [o.order_id for o in store.paid_orders.listing(status) if o.order_id in ids]

    assert listed("paid") == [ids[2]]
    assert listed("shipped") == [ids[0]]
    assert listed("delivered") == [ids[1]]
    assert listed("refunded") == [ids[3]]
    assert listed("all") == ids[:4]
    assert listed("unconfirmed") == [ids[4]]
    shipped = store.paid_orders.get(ids[0])
    assert shipped is not None
    assert (shipped.fulfilment, shipped.carrier, shipped.tracking_url) == (
        Fulfilment.SHIPPED,
        "DHL",
        TRACKING,
    )
    with store.engine.connect() as connection:
        stored = connection.execute(
            sa.select(paid_orders.c.tracking_url).where(paid_orders.c.order_id == ids[0])
        ).scalar_one()
    assert TRACKING not in stored  # sealed
