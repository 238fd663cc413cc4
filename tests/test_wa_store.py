"""ConnectorStore on SQLite files and on PostgreSQL: dedup, 24-hour window, statuses, claims.

The PostgreSQL runs use a throw-away database (tests/support/postgres.py) and skip only when the
server cannot be reached.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.storage.store import (
    ConnectorStore,
    OutboundRecord,
    digest,
    inbound_messages,
    outbound_messages,
)
from tests.support.postgres import temporary_database

CUSTOMER_A = "15550006001"
CUSTOMER_B = "15550006002"


@dataclass
class Backend:
    """Stores on one database (a fresh SQLite file or PostgreSQL database per test)."""

    url: str
    stores: list[ConnectorStore] = field(default_factory=list)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def store(self) -> ConnectorStore:
        """A new ConnectorStore on the same database (as after a restart)."""
        opened = ConnectorStore(self.url)
        self.stores.append(opened)
        return opened

    def message_id(self, name: str) -> str:
        return f"wamid.{self.tag}.{name}"

    def customer_key(self, name: str) -> str:
        return f"test-{self.tag}-{name}"

    def flow_token(self, name: str) -> str:
        return f"flow-{self.tag}-{name}"

    def close(self) -> None:
        for opened in self.stores:
            opened.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(temporary_database("wa_store"))
        else:
            url = f"sqlite:///{tmp_path}/x.db"
        found = Backend(url)
        yield found
        found.close()


def test_inbound_message_counts_once(backend: Backend) -> None:
    store = backend.store()
    first, other = backend.message_id("1"), backend.message_id("2")
    key = backend.customer_key("a")

    assert store.record_inbound(first, key) is True
    assert store.record_inbound(first, key) is False
    assert store.record_inbound(other, key) is True


def test_inbound_dedup_survives_a_restart(backend: Backend) -> None:
    message_id, key = backend.message_id("1"), backend.customer_key("a")
    assert backend.store().record_inbound(message_id, key) is True

    restarted = backend.store()

    assert restarted.record_inbound(message_id, key) is False
    with restarted.engine.connect() as connection:
        row = connection.execute(
            sa.select(inbound_messages).where(inbound_messages.c.message_id == digest(message_id))
        ).one()
    assert row.customer_key == restarted.keys.pseudonym(key)
    assert row.processed_at is None


def test_mark_processed_sets_the_time(backend: Backend) -> None:
    store = backend.store()
    message_id = backend.message_id("1")
    store.record_inbound(message_id, backend.customer_key("a"))

    store.mark_processed(message_id)

    with store.engine.connect() as connection:
        processed_at = connection.execute(
            sa.select(inbound_messages.c.processed_at).where(
                inbound_messages.c.message_id == digest(message_id)
            )
        ).scalar()
    assert processed_at is not None and processed_at > 0


def test_a_flow_token_is_held_by_its_claimer_until_its_turn_is_done(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")

    assert store.claim_flow_token(token, "reply-a") == "ours"
    assert backend.store().claim_flow_token(token, "reply-a") == "ours"  # its replay
    assert store.claim_flow_token(token, "endpoint-b") == "held"  # waits, is not dropped
    store.release_flow_token(token, "endpoint-b")  # not the holder: changes nothing
    store.finish_flow_token(token, "endpoint-b")
    assert store.flow_token_done(token) is False
    store.finish_flow_token(token, "reply-a")
    assert store.flow_token_done(token) is True
    assert store.claim_flow_token(token, "endpoint-b") == "done"
    assert backend.store().claim_flow_token(token, "reply-a") == "done"
    assert store.claim_flow_token(backend.flow_token("2"), "endpoint-b") == "ours"


def test_a_flow_token_claim_no_longer_renewed_is_taken_over(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")
    assert store.claim_flow_token(token, "endpoint-a", 60) == "ours"
    assert store.claim_flow_token(token, "reply-b", 60) == "held"
    assert store.renew_flow_token(token, "endpoint-a") is True
    time.sleep(0.05)  # endpoint-a's process died: no renewal since
    assert backend.store().claim_flow_token(token, "reply-b", 0.01) == "ours"
    assert store.renew_flow_token(token, "endpoint-a") is False  # a late worker learns it
    store.finish_flow_token(token, "endpoint-a")
    assert store.flow_token_done(token) is False
    store.finish_flow_token(token, "reply-b")
    assert store.flow_token_done(token) is True


def test_a_released_flow_token_can_be_claimed_by_another_completion(backend: Backend) -> None:
    store = backend.store()
    token = backend.flow_token("1")
    assert store.claim_flow_token(token, "reply-a") == "ours"
    store.release_flow_token(token, "reply-a")
    assert store.claim_flow_token(token, "endpoint-b") == "ours"


def test_concurrent_claims_of_one_flow_token_have_one_winner(backend: Backend) -> None:
    stores = [backend.store(), backend.store()]
    token = backend.flow_token("race")
    start = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def claim(number: int) -> None:
        start.wait()
        won = stores[number % 2].claim_flow_token(token, f"claimer-{number}")
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["held"] * 7 + ["ours"]


def test_touch_customer_keeps_the_latest_time(backend: Backend) -> None:
    store = backend.store()
    key, other = backend.customer_key("a"), backend.customer_key("b")

    assert store.last_inbound_at(key) is None
    store.touch_customer(key, 1_000.0)
    assert store.last_inbound_at(key) == 1_000.0
    store.touch_customer(key, 2_000.5)
    assert store.last_inbound_at(key) == 2_000.5
    store.touch_customer(key, 1_500.0)
    store.touch_customer(key, 2_000.5)
    assert store.last_inbound_at(key) == 2_000.5
    assert store.last_inbound_at(other) is None
    store.touch_customer(other, 10.0)
    assert backend.store().last_inbound_at(other) == 10.0
    assert store.last_inbound_at(key) == 2_000.5


def error_columns(store: ConnectorStore, message_id: str) -> tuple[object, ...]:
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.select(
                outbound_messages.c.status,
                outbound_messages.c.status_at,
                outbound_messages.c.error_code,
                outbound_messages.c.error_title,
            ).where(outbound_messages.c.message_id == digest(message_id))
        ).one()
    return tuple(row)


def test_statuses_only_move_forward(backend: Backend) -> None:
    store = backend.store()
    message_id, key = backend.message_id("out"), backend.customer_key("a")
    store.record_outbound(message_id, key, "reply")
    assert store.outbound(message_id) == OutboundRecord(message_id, key, "reply", None, "accepted")

    assert store.record_status(message_id, "sent", 10.0) == OutboundRecord(
        message_id, key, "reply", None, "sent"
    )
    read = store.record_status(message_id, "read", 30.0)
    assert read is not None and read.status == "read"
    assert store.record_status(message_id, "delivered", 20.0) is None
    assert store.record_status(message_id, "sent", 10.0) is None
    assert store.record_status(message_id, "read", 31.0) is None
    assert store.record_status(message_id, "deleted", 40.0) is None

    record = store.outbound(message_id)
    assert record is not None and record.status == "read"
    assert error_columns(store, message_id) == ("read", 30.0, None, None)


def test_failed_status_stores_the_error_and_returns_the_body(backend: Backend) -> None:
    store = backend.store()
    message_id, key = backend.message_id("note"), backend.customer_key("a")
    store.record_outbound(message_id, key, "notification", body="Your order ORD-1 has shipped.")
    store.record_status(message_id, "sent", 10.0)

    failed = store.record_status(message_id, "failed", 11.0, 131047, "Re-engagement message")

    assert failed == OutboundRecord(
        message_id, key, "notification", "Your order ORD-1 has shipped.", "failed"
    )
    assert error_columns(backend.store(), message_id) == (
        "failed",
        11.0,
        131047,
        "Re-engagement message",
    )
    assert store.record_status(message_id, "failed", 12.0, 131047, "again") is None


def test_status_of_an_unknown_message_is_ignored(backend: Backend) -> None:
    store = backend.store()
    message_id = backend.message_id("never-sent")

    assert store.record_status(message_id, "delivered", 1.0) is None
    assert store.outbound(message_id) is None


def test_of_concurrent_failed_statuses_one_moves_the_message(backend: Backend) -> None:
    """Two replicas (or Meta's re-delivery) handling a 'failed' at once: only one gets the
    record back, so the 24-hour-window fallback is sent once."""
    stores = [backend.store(), backend.store()]
    messages = [backend.message_id(f"fallback-{n}") for n in range(10)]
    for message_id in messages:
        stores[0].record_outbound(message_id, backend.customer_key("a"), "notification", "Paid")
        stores[0].record_status(message_id, "sent", 1.0)
    winners: list[str] = []
    lock = threading.Lock()

    def apply(message_id: str, start: threading.Barrier, number: int) -> None:
        start.wait()
        record = stores[number % 2].record_status(message_id, "failed", 2.0, 131047, "window")
        if record is not None:
            with lock:
                winners.append(message_id)

    for message_id in messages:
        start = threading.Barrier(4)
        threads = [threading.Thread(target=apply, args=(message_id, start, n)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(winners) == sorted(messages)


def test_the_first_session_paid_for_an_order_confirms_it_and_keeps_doing_so(
    backend: Backend,
) -> None:
    store = backend.store()
    order = f"ORD-{backend.tag}"
    assert store.claim_order_payment(CUSTOMER_A, order, "cs_first") is True
    assert store.claim_order_payment(CUSTOMER_A, order, "cs_second") is False  # a duplicate
    assert backend.store().claim_order_payment(CUSTOMER_A, order, "cs_first") is True  # replay
    assert backend.store().claim_order_payment(CUSTOMER_A, order, "cs_second") is False
    assert store.claim_order_payment(CUSTOMER_A, f"{order}-other", "cs_second") is True


def test_another_customers_order_with_the_same_id_is_not_a_duplicate(backend: Backend) -> None:
    store = backend.store()
    order = f"ORD-{backend.tag}"
    assert store.claim_order_payment(CUSTOMER_A, order, "cs_of_a") is True
    assert store.claim_order_payment(CUSTOMER_B, order, "cs_of_b") is True  # not refunded
    assert store.claim_order_payment(CUSTOMER_B, order, "cs_again_of_b") is False


def test_of_sessions_of_one_order_paid_at_once_one_confirms_it(backend: Backend) -> None:
    stores = [backend.store(), backend.store()]
    order = f"ORD-{backend.tag}"
    start = threading.Barrier(8)
    winners: list[str] = []
    lock = threading.Lock()

    def claim(number: int) -> None:
        start.wait()
        session = f"cs_{number}"
        if stores[number % 2].claim_order_payment(CUSTOMER_A, order, session):
            with lock:
                winners.append(session)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(winners) == 1
