"""Stripe records on SQLite and PostgreSQL: the first session paid for an order confirms it."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from connectors.storage.schema import stripe_events
from tests.storage.conftest import Backend

CUSTOMER_A = "15550006001"
CUSTOMER_B = "15550006002"


def test_the_first_session_paid_for_an_order_confirms_it_and_keeps_doing_so(
    backend: Backend,
) -> None:
    store = backend.store()
    order = f"ORD-{backend.tag}"
    assert store.stripe.claim_order_payment(CUSTOMER_A, order, "cs_first") is True
    assert store.stripe.claim_order_payment(CUSTOMER_A, order, "cs_second") is False  # a duplicate
    assert (
        backend.store().stripe.claim_order_payment(CUSTOMER_A, order, "cs_first") is True
    )  # replay
    assert backend.store().stripe.claim_order_payment(CUSTOMER_A, order, "cs_second") is False
    assert store.stripe.claim_order_payment(CUSTOMER_A, f"{order}-other", "cs_second") is True


def test_another_customers_order_with_the_same_id_is_not_a_duplicate(backend: Backend) -> None:
    store = backend.store()
    order = f"ORD-{backend.tag}"
    assert store.stripe.claim_order_payment(CUSTOMER_A, order, "cs_of_a") is True
    assert store.stripe.claim_order_payment(CUSTOMER_B, order, "cs_of_b") is True  # not refunded
    assert store.stripe.claim_order_payment(CUSTOMER_B, order, "cs_again_of_b") is False


def test_of_sessions_of_one_order_paid_at_once_one_confirms_it(backend: Backend) -> None:
    stores = [backend.store(), backend.store()]
    order = f"ORD-{backend.tag}"
    start = threading.Barrier(8)
    winners: list[str] = []
    lock = threading.Lock()

    def claim(number: int) -> None:
        start.wait()
        session = f"cs_{number}"
        if stores[number % 2].stripe.claim_order_payment(CUSTOMER_A, order, session):
            with lock:
                winners.append(session)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(winners) == 1


def test_an_expiry_with_recovery_is_found_again_by_its_session_and_kept_sealed(
    backend: Backend,
) -> None:
    store = backend.store()
    session, order = f"cs_exp_{backend.tag}", f"ORD-{backend.tag}"
    assert store.stripe.record_event(
        f"evt_exp_{backend.tag}",
        "checkout.session.expired",
        "{}",
        CUSTOMER_A,
        recovery=(session, order),
    )
    assert backend.store().stripe.recovery_origin(session) == (CUSTOMER_A, order)
    assert store.stripe.recovery_origin(f"cs_other_{backend.tag}") is None
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.select(stripe_events.c.customer_sealed, stripe_events.c.order_sealed).where(
                stripe_events.c.event_id == f"evt_exp_{backend.tag}"
            )
        ).one()
    assert CUSTOMER_A not in str(row) and order not in str(row)


def test_a_recovery_record_moved_to_another_row_does_not_open(backend: Backend) -> None:
    store = backend.store()
    first, second = f"evt_a_{backend.tag}", f"evt_b_{backend.tag}"
    store.stripe.record_event(first, "checkout.session.expired", None, CUSTOMER_A)
    store.stripe.record_event(
        second, "checkout.session.expired", None, CUSTOMER_B, recovery=("cs_b", "ORD-B")
    )
    moved = f"cs_moved_{backend.tag}"
    with store.engine.begin() as connection:
        sealed = connection.execute(
            sa.select(stripe_events.c.order_sealed).where(stripe_events.c.event_id == second)
        ).scalar()
        connection.execute(
            stripe_events.update()
            .where(stripe_events.c.event_id == first)
            .values(checkout_session_id=moved, order_sealed=sealed)
        )
    assert store.stripe.recovery_origin(moved) is None
