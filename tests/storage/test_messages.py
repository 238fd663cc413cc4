"""Message records on SQLite and PostgreSQL: dedup, the 24-hour window, delivery statuses."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from connectors.storage.messages import OutboundRecord
from connectors.storage.schema import inbound_messages, outbound_messages
from connectors.storage.sealing import digest
from connectors.storage.store import ConnectorStore
from tests.storage.conftest import Backend


def test_inbound_message_counts_once(backend: Backend) -> None:
    store = backend.store()
    first, other = backend.message_id("1"), backend.message_id("2")
    key = backend.customer_id("a")

    assert store.messages.record_inbound(first, key) is True
    assert store.messages.record_inbound(first, key) is False
    assert store.messages.record_inbound(other, key) is True


def test_inbound_dedup_survives_a_restart(backend: Backend) -> None:
    message_id, key = backend.message_id("1"), backend.customer_id("a")
    assert backend.store().messages.record_inbound(message_id, key) is True

    restarted = backend.store()

    assert restarted.messages.record_inbound(message_id, key) is False
    with restarted.engine.connect() as connection:
        row = connection.execute(
            sa.select(inbound_messages).where(inbound_messages.c.message_id == digest(message_id))
        ).one()
    assert row.customer_pseudonym == restarted.keys.pseudonym(key)
    assert row.processed_at is None


def test_mark_processed_sets_the_time(backend: Backend) -> None:
    store = backend.store()
    message_id = backend.message_id("1")
    store.messages.record_inbound(message_id, backend.customer_id("a"))

    store.messages.mark_processed(message_id)

    with store.engine.connect() as connection:
        processed_at = connection.execute(
            sa.select(inbound_messages.c.processed_at).where(
                inbound_messages.c.message_id == digest(message_id)
            )
        ).scalar()
    assert processed_at is not None and processed_at > 0


def test_touch_customer_keeps_the_latest_time(backend: Backend) -> None:
    store = backend.store()
    key, other = backend.customer_id("a"), backend.customer_id("b")

    assert store.messages.last_inbound_at(key) is None
    store.messages.touch_customer(key, 1_000.0)
    assert store.messages.last_inbound_at(key) == 1_000.0
    store.messages.touch_customer(key, 2_000.5)
    assert store.messages.last_inbound_at(key) == 2_000.5
    store.messages.touch_customer(key, 1_500.0)
    store.messages.touch_customer(key, 2_000.5)
    assert store.messages.last_inbound_at(key) == 2_000.5
    assert store.messages.last_inbound_at(other) is None
    store.messages.touch_customer(other, 10.0)
    assert backend.store().messages.last_inbound_at(other) == 10.0
    assert store.messages.last_inbound_at(key) == 2_000.5


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
    message_id, key = backend.message_id("out"), backend.customer_id("a")
    store.messages.record_outbound(message_id, key, "reply")
    assert store.messages.outbound(message_id) == OutboundRecord(
        message_id, key, "reply", None, "accepted"
    )

    assert store.messages.record_status(message_id, "sent", 10.0) == OutboundRecord(
        message_id, key, "reply", None, "sent"
    )
    read = store.messages.record_status(message_id, "read", 30.0)
    assert read is not None and read.status == "read"
    assert store.messages.record_status(message_id, "delivered", 20.0) is None
    assert store.messages.record_status(message_id, "sent", 10.0) is None
    assert store.messages.record_status(message_id, "read", 31.0) is None
    assert store.messages.record_status(message_id, "deleted", 40.0) is None

    record = store.messages.outbound(message_id)
    assert record is not None and record.status == "read"
    assert error_columns(store, message_id) == ("read", 30.0, None, None)


def test_failed_status_stores_the_error_and_returns_the_body(backend: Backend) -> None:
    store = backend.store()
    message_id, key = backend.message_id("note"), backend.customer_id("a")
    store.messages.record_outbound(
        message_id, key, "notification", body="Your order ORD-1 has shipped."
    )
    store.messages.record_status(message_id, "sent", 10.0)

    failed = store.messages.record_status(
        message_id, "failed", 11.0, 131047, "Re-engagement message"
    )

    assert failed == OutboundRecord(
        message_id, key, "notification", "Your order ORD-1 has shipped.", "failed"
    )
    assert error_columns(backend.store(), message_id) == (
        "failed",
        11.0,
        131047,
        "Re-engagement message",
    )
    assert store.messages.record_status(message_id, "failed", 12.0, 131047, "again") is None


def test_status_of_an_unknown_message_is_ignored(backend: Backend) -> None:
    store = backend.store()
    message_id = backend.message_id("never-sent")

    assert store.messages.record_status(message_id, "delivered", 1.0) is None
    assert store.messages.outbound(message_id) is None


def test_of_concurrent_failed_statuses_one_moves_the_message(backend: Backend) -> None:
    """Two replicas (or Meta's re-delivery) handling a 'failed' at once: only one gets the
    record back, so the 24-hour-window fallback is sent once."""
    stores = [backend.store(), backend.store()]
    messages = [backend.message_id(f"fallback-{n}") for n in range(10)]
    for message_id in messages:
        stores[0].messages.record_outbound(
            message_id, backend.customer_id("a"), "notification", "Paid"
        )
        stores[0].messages.record_status(message_id, "sent", 1.0)
    winners: list[str] = []
    lock = threading.Lock()

    def apply(message_id: str, start: threading.Barrier, number: int) -> None:
        start.wait()
        record = stores[number % 2].messages.record_status(
            message_id, "failed", 2.0, 131047, "window"
        )
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
