"""The outbox keeps each customer's order: a retried entry is not overtaken by later ones of
its queue (a dead letter stops holding them up), the shop's webhook events queue apart from
the customer's messages, and a flush wakes the worker instead of running a round beside it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.jobs.outbox import GIVE_UP_AFTER_SECONDS, OutboxWorker
from connectors.storage.opening import open_store
from connectors.storage.outbox import SIDE_QUEUE
from connectors.storage.schema import outbox
from connectors.storage.store import ConnectorStore
from tests.support.postgres import temporary_database

CUSTOMER = "15550601234"
OTHER = "15550605678"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConnectorStore]:
    """The queries that pick what may go next differ by dialect: both are run."""
    if request.param == "sqlite":
        yield open_store(f"sqlite:///{tmp_path / 'order.db'}")
        return
    with temporary_database("outbox_order") as url:
        opened = open_store(url)
        yield opened
        opened.engine.dispose()


def queue(store: ConnectorStore, customer: str, *texts: str, prefix: str = "") -> None:
    for text in texts:
        body = {"type": "text", "text": {"body": text}}
        store.outbox.enqueue(f"{prefix}reply:{text}", customer, json.dumps(body))


class Receiver:
    """A deliver that refuses the texts in `refuse` (each once, or always)."""

    def __init__(self, refuse: set[str], always: bool = False) -> None:
        self.refuse = refuse
        self.always = always
        self.delivered: list[str] = []

    async def __call__(self, customer: str, body: dict[str, Any]) -> str | None:
        text = body["text"]["body"]
        if text in self.refuse:
            if not self.always:
                self.refuse.discard(text)
            raise RuntimeError("503 from Meta")
        self.delivered.append(text)
        return f"wamid.{text}"


def rounds(worker: OutboxWorker, count: int) -> None:
    async def run() -> None:
        for _ in range(count):
            await worker.run_once()
            await asyncio.sleep(0.05)  # past the backoff (base 0.01 s)

    asyncio.run(run())


def test_a_failed_entry_is_not_overtaken_by_later_ones_of_its_customer(
    store: ConnectorStore,
) -> None:
    queue(store, CUSTOMER, "1", "2", "3")
    queue(store, OTHER, "a")
    receiver = Receiver({"1"})
    rounds(OutboxWorker(store, receiver, 0.01, 0.01), 2)
    assert [t for t in receiver.delivered if t != "a"] == ["1", "2", "3"]
    assert "a" in receiver.delivered  # another customer's entry is not held up
    assert {e.status for e in store.outbox.entries()} == {"sent"}


def test_a_dead_letter_stops_holding_up_its_customer(store: ConnectorStore) -> None:
    queue(store, CUSTOMER, "1", "2")
    with store.engine.begin() as connection:  # "1" was queued more than 24 h ago
        connection.execute(
            outbox.update()
            .where(outbox.c.dedup_key == "reply:1")
            .values(created_at=time.time() - GIVE_UP_AFTER_SECONDS - 1)
        )
    receiver = Receiver({"1"}, always=True)
    rounds(OutboxWorker(store, receiver, 0.01, 0.01), 2)
    assert receiver.delivered == ["2"]
    assert [e.status for e in store.outbox.entries()] == ["dead", "sent"]


def test_the_shops_events_queue_apart_from_the_customers_messages(
    store: ConnectorStore,
) -> None:
    """A failing webhook event holds up later events, not the customer's messages."""
    queue(store, CUSTOMER, "event-1", "event-2", prefix=SIDE_QUEUE)
    queue(store, CUSTOMER, "hello")
    receiver = Receiver({"event-1"}, always=True)
    rounds(OutboxWorker(store, receiver, 0.01, 0.01), 2)
    assert receiver.delivered == ["hello"]
    statuses = {e.body: e.status for e in store.outbox.entries()}
    assert list(statuses.values()) == ["pending", "pending", "sent"]


def test_a_flush_wakes_the_worker_and_waits_for_its_round(store: ConnectorStore) -> None:
    receiver = Receiver(set())
    worker = OutboxWorker(store, receiver, 0.01, poll_seconds=60)
    rounds_run: list[int] = []
    run_once = worker.run_once

    async def counted() -> int:
        rounds_run.append(1)
        return await run_once()

    worker.run_once = counted  # type: ignore[method-assign]

    async def scenario() -> None:
        running = asyncio.create_task(worker.run_forever())
        await asyncio.sleep(0.1)  # its first round is over; it sleeps for a minute now
        queue(store, CUSTOMER, "back")
        await asyncio.wait_for(worker.flush(), 2)
        assert receiver.delivered == ["back"] and len(rounds_run) == 2
        running.cancel()

    asyncio.run(scenario())
