"""The notification outbox: queued once, sent when Meta accepts, dead-lettered after 24 h."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from connectors import outbox as outbox_module
from connectors.outbox import OutboxWorker, OutboxWriter, masked
from connectors.store import ConnectorStore

CUSTOMER = "15550601234"
BODY = {"type": "text", "text": {"body": "Order ORD-1 is confirmed."}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectorStore:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return ConnectorStore(url)


def test_a_replayed_turn_queues_nothing_twice(store: ConnectorStore) -> None:
    async def turn() -> None:
        writer = OutboxWriter(store, "evt_1", None)
        await writer.enqueue(CUSTOMER, BODY)
        await writer.enqueue(CUSTOMER, {"type": "text", "text": {"body": "Anything else?"}})

    asyncio.run(turn())
    asyncio.run(turn())  # the same event's turn again, after a crash
    entries = store.notifications()
    assert [json.loads(e.body)["text"]["body"] for e in entries] == [
        "Order ORD-1 is confirmed.",
        "Anything else?",
    ]


def run_worker(store: ConnectorStore, deliver: Any) -> int:
    worker = OutboxWorker(store, deliver, base_delay=0.01, poll_seconds=0.01)
    return asyncio.run(worker.run_once())


def test_sent_only_after_meta_accepts_and_retried_until_then(store: ConnectorStore) -> None:
    store.enqueue_notification("evt_2:0", CUSTOMER, json.dumps(BODY))
    delivered: list[dict[str, Any]] = []

    async def refuse(customer: str, body: dict[str, Any]) -> str | None:
        raise ConnectionError("graph api unreachable")

    async def accept(customer: str, body: dict[str, Any]) -> str | None:
        delivered.append(body)
        return "wamid.OK"

    assert run_worker(store, refuse) == 0
    (entry,) = store.notifications()
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.last_error is not None and "unreachable" in entry.last_error
    time.sleep(0.05)  # the backoff of the first retry
    assert run_worker(store, accept) == 1
    assert delivered == [BODY]
    assert store.notifications()[0].status == "sent"
    assert run_worker(store, accept) == 0  # nothing sent twice


def test_after_24_hours_it_is_a_dead_letter_an_operator_can_retry(
    store: ConnectorStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.enqueue_notification("evt_3:0", CUSTOMER, json.dumps(BODY))
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update notification_outbox set created_at = ?", (time.time() - 25 * 3600,)
        )

    async def refuse(customer: str, body: dict[str, Any]) -> str | None:
        raise ConnectionError("still down")

    run_worker(store, refuse)
    assert [e.status for e in store.notifications()] == ["dead"]
    assert outbox_module.main(["list", "--status", "dead"]) == 0
    listing = capsys.readouterr().out
    assert "dead" in listing and masked(CUSTOMER) in listing and CUSTOMER not in listing
    assert outbox_module.main(["retry"]) == 0
    assert "1 notification(s) queued again" in capsys.readouterr().out

    async def accept(customer: str, body: dict[str, Any]) -> str | None:
        return "wamid.LATE"

    assert run_worker(store, accept) == 1
    assert [e.status for e in store.notifications()] == ["sent"]


def test_two_workers_never_send_the_same_entry(store: ConnectorStore) -> None:
    for n in range(20):
        store.enqueue_notification(f"evt_4:{n}", CUSTOMER, json.dumps(BODY))
    sent: list[int] = []

    async def slow_accept(customer: str, body: dict[str, Any]) -> str | None:
        await asyncio.sleep(0.001)
        sent.append(1)
        return "wamid.X"

    async def both() -> None:
        workers = [OutboxWorker(store, slow_accept, 0.01, 0.01) for _ in range(2)]
        await asyncio.gather(*(w.run_once() for w in workers))

    asyncio.run(both())
    assert len(sent) == 20
    assert {e.status for e in store.notifications()} == {"sent"}
