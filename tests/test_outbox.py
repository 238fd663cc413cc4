"""The notification outbox: queued once, sent when Meta accepts, dead-lettered after 24 h."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.jobs.outbox import OutboxWorker, OutboxWriter
from connectors.log_refs import customer_ref
from connectors.metrics import REGISTRY
from connectors.settings import WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent, map_event
from connectors.stripe.webhook import outbox_origin
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.output import WhatsAppOutput
from connectors.whatsapp.wasender import WaSenderClient
from sandbox import stripe_events as se
from scripts import outbox_cli

CUSTOMER = "15550601234"
BODY = {"type": "text", "text": {"body": "Order ORD-1 is confirmed."}}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConnectorStore:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return open_store(url)


def test_a_replayed_turn_queues_nothing_twice(store: ConnectorStore) -> None:
    async def turn() -> None:
        writer = OutboxWriter(store, "evt_1", None)
        await writer.enqueue(CUSTOMER, BODY)
        await writer.enqueue(CUSTOMER, {"type": "text", "text": {"body": "Anything else?"}})

    asyncio.run(turn())
    asyncio.run(turn())  # the same event's turn again, after a crash
    entries = store.outbox.entries()
    assert [json.loads(e.body)["text"]["body"] for e in entries] == [
        "Order ORD-1 is confirmed.",
        "Anything else?",
    ]


def run_worker(store: ConnectorStore, deliver: Any) -> int:
    worker = OutboxWorker(store, deliver, base_delay=0.01, poll_seconds=0.01)
    return asyncio.run(worker.run_once())


def test_sent_only_after_meta_accepts_and_retried_until_then(store: ConnectorStore) -> None:
    store.outbox.enqueue("evt_2:0", CUSTOMER, json.dumps(BODY))
    delivered: list[dict[str, Any]] = []

    async def refuse(customer: str, body: dict[str, Any]) -> str | None:
        raise ConnectionError("graph api unreachable")

    async def accept(customer: str, body: dict[str, Any]) -> str | None:
        delivered.append(body)
        return "wamid.OK"

    assert run_worker(store, refuse) == 0
    (entry,) = store.outbox.entries()
    assert (entry.status, entry.attempts) == ("pending", 1)
    assert entry.last_error is not None and "unreachable" in entry.last_error
    time.sleep(0.05)  # the backoff of the first retry
    assert run_worker(store, accept) == 1
    assert delivered == [BODY]
    assert store.outbox.entries()[0].status == "sent"
    assert run_worker(store, accept) == 0  # nothing sent twice


def test_after_24_hours_it_is_a_dead_letter_an_operator_can_retry(
    store: ConnectorStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.outbox.enqueue("evt_3:0", CUSTOMER, json.dumps(BODY))
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update notification_outbox set created_at = ?", (time.time() - 25 * 3600,)
        )

    async def refuse(customer: str, body: dict[str, Any]) -> str | None:
        raise ConnectionError("still down")

    run_worker(store, refuse)
    assert [e.status for e in store.outbox.entries()] == ["dead"]
    assert outbox_cli.main(["list", "--status", "dead"]) == 0
    listing = capsys.readouterr().out
    assert "dead" in listing and outbox_cli.masked(CUSTOMER) in listing and CUSTOMER not in listing
    assert outbox_cli.main(["retry"]) == 0
    assert "1 notification(s) queued again" in capsys.readouterr().out

    async def accept(customer: str, body: dict[str, Any]) -> str | None:
        return "wamid.LATE"

    assert run_worker(store, accept) == 1
    assert [e.status for e in store.outbox.entries()] == ["sent"]


def test_two_workers_never_send_the_same_entry(store: ConnectorStore) -> None:
    for n in range(20):
        store.outbox.enqueue(f"evt_4:{n}", CUSTOMER, json.dumps(BODY))
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
    assert {e.status for e in store.outbox.entries()} == {"sent"}


def test_a_slow_send_holds_up_its_customer_only(store: ConnectorStore) -> None:
    slow_customer = "15550609999"
    store.outbox.enqueue("evt_7:0", slow_customer, json.dumps(BODY))
    store.outbox.enqueue("evt_7:1", slow_customer, json.dumps(BODY))
    store.outbox.enqueue("evt_8:0", CUSTOMER, json.dumps(BODY))
    order: list[str] = []

    async def deliver(customer: str, body: dict[str, Any]) -> str | None:
        if customer == slow_customer:
            await asyncio.sleep(0.2)  # a receiver that takes its time
        order.append(customer)
        return "wamid.X"

    assert run_worker(store, deliver) == 3
    assert order == [CUSTOMER, slow_customer, slow_customer]  # its own two still in order


SHORT_LEASE = 0.3
WAIT_FOR_SEND_SECONDS = 10  # the slow worker's send starts well within this, or it fails


def test_a_send_slower_than_the_lease_is_not_sent_by_a_second_worker(
    store: ConnectorStore,
) -> None:
    store.outbox.enqueue("evt_5:0", CUSTOMER, json.dumps(BODY))
    sent: list[str] = []

    async def scenario() -> None:
        started, finish = asyncio.Event(), asyncio.Event()

        async def slow_send(customer: str, body: dict[str, Any]) -> str | None:
            sent.append("slow")
            started.set()
            await finish.wait()  # Graph API slow: longer than the lease
            return "wamid.slow"

        async def other_send(customer: str, body: dict[str, Any]) -> str | None:
            sent.append("other")
            return "wamid.other"

        slow = OutboxWorker(store, slow_send, 0.01, 0.01, SHORT_LEASE)
        other = OutboxWorker(store, other_send, 0.01, 0.01, SHORT_LEASE)
        sending = asyncio.create_task(slow.run_once())
        await asyncio.wait_for(started.wait(), WAIT_FOR_SEND_SECONDS)
        for _ in range(8):  # the other replica's rounds while the slow send runs: 4 leases
            await asyncio.sleep(SHORT_LEASE / 2)
            await other.run_once()
        finish.set()
        await sending

    asyncio.run(scenario())
    assert sent == ["slow"]
    assert [e.status for e in store.outbox.entries()] == ["sent"]


def test_an_entry_whose_lease_ran_out_in_the_batch_is_left_to_the_new_holder(
    store: ConnectorStore,
) -> None:
    for n in range(2):
        store.outbox.enqueue(f"evt_6:{n}", CUSTOMER, json.dumps(BODY))
    sent: list[str] = []

    # The slow worker claims both entries; its first send outlasts the second one's lease.
    # The other worker does not take the second while the first is being sent (the
    # customer's order), but once it is: the slow worker no longer holds it.
    async def scenario() -> tuple[int, int]:
        started, finish = asyncio.Event(), asyncio.Event()

        def sender(name: str) -> Any:
            async def deliver(customer: str, body: dict[str, Any]) -> str | None:
                sent.append(name)
                if name == "slow" and not finish.is_set():
                    started.set()
                    await finish.wait()
                return f"wamid.{name}{len(sent)}"

            return deliver

        slow = OutboxWorker(store, sender("slow"), 0.01, 0.01, SHORT_LEASE)
        other = OutboxWorker(store, sender("other"), 0.01, 0.01, SHORT_LEASE)
        sending = asyncio.create_task(slow.run_once())
        await asyncio.wait_for(started.wait(), WAIT_FOR_SEND_SECONDS)
        await asyncio.sleep(2 * SHORT_LEASE)  # the second entry's claim runs out
        meanwhile = await other.run_once()
        finish.set()
        await sending
        return meanwhile, await other.run_once()

    assert asyncio.run(scenario()) == (0, 1)
    assert sent == ["slow", "other"]  # the second entry went out once
    assert [e.status for e in store.outbox.entries()] == ["sent", "sent"]


@pytest.mark.parametrize(
    ("customer", "transport"),
    [
        (CUSTOMER, "graph"),  # outside the 24-hour window, no template configured
        ("US.13491208655302741918", "wasender"),  # a username: no phone number
    ],
)
def test_a_notification_that_cannot_be_sent_is_undeliverable_not_sent(
    store: ConnectorStore,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    customer: str,
    transport: str,
) -> None:
    unreachable = "http://127.0.0.1:9"  # nothing may be sent at all
    settings = WhatsAppSettings(
        "token",
        "123",
        ("secret",),
        "verify",
        unreachable,
        notification_transport=transport,
        wasender_api_key="key",
    )
    output = WhatsAppOutput(
        settings,
        GraphClient(GraphSettings(unreachable, "123", "token")),
        store,
        notifications=True,
        wasender=WaSenderClient(unreachable, "key"),
    )
    store.outbox.enqueue("evt_7:0", customer, json.dumps(BODY))
    before = REGISTRY.get_sample_value(
        "shop_outbox_delivery_attempts_total", {"result": "undeliverable"}
    )
    caplog.set_level(logging.INFO)

    assert run_worker(store, output.deliver) == 0
    (entry,) = store.outbox.entries()
    assert entry.status == "undeliverable" and entry.attempts == 1
    after = REGISTRY.get_sample_value(
        "shop_outbox_delivery_attempts_total", {"result": "undeliverable"}
    )
    assert (after or 0) - (before or 0) == 1
    (line,) = [r.getMessage() for r in caplog.records if "undeliverable" in r.getMessage()]
    assert customer_ref(customer) in line and customer not in line
    assert run_worker(store, output.deliver) == 0  # not tried again
    assert outbox_cli.main(["list", "--status", "undeliverable"]) == 0
    listing = capsys.readouterr().out
    assert (
        "undeliverable" in listing
        and outbox_cli.masked(customer) in listing
        and customer not in listing
    )
    assert store.health()["undeliverable_notifications"] == 1


def test_two_events_of_one_orders_expiry_queue_one_follow_up(store: ConnectorStore) -> None:
    # Two turns for one expired link racing (two event ids, two replicas, trackers that
    # neither saw the other's): the outbox key is the order's, so one follow-up is queued.
    session = {"id": "cs_1", "metadata": {"whatsapp_user_id": CUSTOMER, "order_id": "ORD-1"}}
    follow_up = {"type": "text", "text": {"body": "Your payment link for order ORD-1 expired"}}

    async def turn(event_id: str) -> None:
        mapped = map_event({**se.event("checkout.session.expired", session), "id": event_id})
        assert isinstance(mapped, EventIntent)
        await OutboxWriter(store, outbox_origin(event_id, mapped), None).enqueue(
            CUSTOMER, follow_up
        )

    async def race() -> None:
        await asyncio.gather(turn("evt_1"), turn("evt_2"))

    asyncio.run(race())
    assert [json.loads(e.body) for e in store.outbox.entries()] == [follow_up]
