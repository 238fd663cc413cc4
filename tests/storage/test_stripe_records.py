"""Stripe records on SQLite and PostgreSQL: the first session paid for an order confirms it."""

from __future__ import annotations

import threading

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
