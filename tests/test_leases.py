"""Replicas racing for the same work: a turn slower than the lease is not run a second time
by the recovery sweep of another replica, a replay skips work finished while it waited, and
a notification refused for the 24-hour window gets one fallback however many replicas see
its 'failed' status.

Two WhatsAppInput instances on one database stand for two replicas; a slow stand-in for
Rasa counts the turns. Leases are fractions of a second, so the test takes about as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from connectors.edge.signatures import hub_signature
from connectors.settings import FlowSettings, WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.stripe.events import map_event
from connectors.whatsapp.channel import WhatsAppInput, replayable_work
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.payloads import message_to_json, parse_notification
from connectors.whatsapp.webhook import OnNewMessage
from sandbox import meta
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator

SECRET = "app-secret-for-lease-tests"
STRIPE_SECRET = "whsec_for_lease_tests"
LEASE_SECONDS = 0.3
CUSTOMER = "15550800001"


@dataclass
class FakeRequest:
    body: bytes
    headers: dict[str, str]


@dataclass
class SlowRasa:
    """Takes `seconds` per turn (a slow action server, a wait for the lock) and counts turns."""

    seconds: float
    turns: list[str] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.turns.append(message.text)
        await asyncio.sleep(self.seconds)


def replica(
    url: str, graph: GraphApiEmulator, template: str | None = "order_update"
) -> WhatsAppInput:
    settings = WhatsAppSettings(
        graph.access_token,
        graph.phone_number_id,
        (SECRET,),
        "verify",
        graph.base_url,
        replay_lease_seconds=LEASE_SECONDS,
        notification_template=template,
    )
    return WhatsAppInput(settings, open_store(url), FlowSettings(None), (STRIPE_SECRET,))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'leases.db'}"


async def recover(replica: WhatsAppInput, agent: Any, rasa: OnNewMessage) -> int:
    """One recovery sweep of `replica`, over the work its server replays."""
    work = replayable_work(replica.messages, replica.stripe, agent, rasa)
    return await replica.recovery.recover(work)


async def sweep_for(sweeper: WhatsAppInput, rasa: SlowRasa, seconds: float) -> None:
    """The recovery sweep of a replica, every lease/2, for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await recover(sweeper, None, rasa)
        await asyncio.sleep(LEASE_SECONDS / 2)


def test_a_turn_slower_than_the_lease_is_not_run_again(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    rasa = SlowRasa(seconds=5 * LEASE_SECONDS)
    receiving, sweeping = replica(url, fake_graph), replica(url, fake_graph)
    document = meta.notification([meta.text(CUSTOMER, "hello")], [meta.contact(CUSTOMER)])
    body = json.dumps(document).encode()

    async def scenario() -> None:
        request = FakeRequest(body, {"X-Hub-Signature-256": hub_signature(body, SECRET)})
        answer = await receiving.messages.receive_notification(request, rasa)  # type: ignore[arg-type]
        assert answer.status == 200
        await sweep_for(sweeping, rasa, 6 * LEASE_SECONDS)
        await receiving.queues.drain()
        await sweeping.queues.drain()
        await receiving.graph.close()
        await sweeping.graph.close()

    asyncio.run(scenario())
    assert len(rasa.turns) == 1
    figures = receiving.store.health()
    assert figures["pending_messages"] == 0


def test_a_replay_skips_work_finished_while_it_waited(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    rasa = SlowRasa(seconds=0)
    sweeping = replica(url, fake_graph)
    store = sweeping.store
    document = meta.notification([meta.text(CUSTOMER, "hello")], [meta.contact(CUSTOMER)])
    (message,) = parse_notification(document).messages
    # A replica recorded it a while ago and stopped renewing (stalled, not dead).
    store.messages.record_inbound(
        message.id, CUSTOMER, time.time() - 10, message_to_json(message), "x"
    )
    busy = asyncio.Event()

    async def earlier_turn() -> None:
        await busy.wait()

    async def scenario() -> None:
        sweeping.queues.submit(CUSTOMER, earlier_turn, "an earlier turn of the customer")
        assert await recover(sweeping, None, rasa) == 1  # queued behind the earlier turn
        store.messages.mark_processed(message.id)  # meanwhile the stalled replica finished it
        busy.set()
        await sweeping.queues.drain()
        await sweeping.graph.close()

    asyncio.run(scenario())
    assert rasa.turns == []


@dataclass
class FailingOnceRasa:
    """The first turn fails (the action server is down); the next ones are counted."""

    turns: list[str] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.turns.append(message.text)
        if len(self.turns) == 1:
            raise ConnectionError("action server unreachable")


def test_a_replay_that_failed_is_replayed_by_a_later_sweep(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    rasa = FailingOnceRasa()
    sweeping = replica(url, fake_graph)
    document = meta.notification([meta.text(CUSTOMER, "hello")], [meta.contact(CUSTOMER)])
    (message,) = parse_notification(document).messages
    sweeping.store.messages.record_inbound(
        message.id, CUSTOMER, time.time() - 10, message_to_json(message), "x"
    )

    async def scenario() -> None:
        assert await recover(sweeping, None, rasa) == 1
        await sweeping.queues.drain()  # the replay failed: the message is still unprocessed
        await asyncio.sleep(LEASE_SECONDS * 1.5)  # its claim's lease runs out
        assert await recover(sweeping, None, rasa) == 1
        await sweeping.queues.drain()
        await sweeping.graph.close()

    asyncio.run(scenario())
    assert rasa.turns == ["hello", "hello"]
    assert sweeping.store.health()["pending_messages"] == 0


def test_two_replicas_send_the_fallback_template_once(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    replicas = [replica(url, fake_graph), replica(url, fake_graph)]
    store = replicas[0].store
    failed = []
    for n in range(30):
        message_id = f"wamid.FALLBACK{n}"
        store.messages.record_outbound(
            message_id, CUSTOMER, "notification", f"Order ORD-{n} is paid."
        )
        failed.append(meta.status(message_id, "failed", CUSTOMER, code=131047))
    statuses = parse_notification(meta.notification(statuses=failed)).statuses

    async def scenario() -> None:
        await asyncio.gather(
            *(r.messages.statuses.handle_status(s) for s in statuses for r in replicas)
        )
        while sum(await asyncio.gather(*(r.outbox_worker.run_once() for r in replicas))):
            pass  # both outbox workers, until nothing is left to send
        for each in replicas:
            await each.graph.close()

    asyncio.run(scenario())
    templates = [m for m in fake_graph.messages() if m.get("type") == "template"]
    texts = [t["template"]["components"][0]["parameters"][0]["text"] for t in templates]
    assert sorted(texts) == sorted(f"Order ORD-{n} is paid." for n in range(30))


@dataclass
class SlowAgent:
    """What the Stripe path uses of Rasa's agent; triggering an intent takes `seconds`."""

    seconds: float
    triggered: list[str] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock_store = self
        self.processor = self
        self.tracker_store = self

    async def retrieve(self, _: str) -> None:
        return None  # no conversation: the paid order stays unconfirmed

    @contextlib.asynccontextmanager
    async def lock(self, _: str) -> AsyncIterator[None]:
        yield

    async def fetch_tracker_and_update_session(self, *_: Any) -> None:
        return None

    async def trigger_intent(self, intent_name: str, entities: dict[str, Any], **_: Any) -> None:
        self.triggered.append(intent_name)
        self.entities.append(entities)
        await asyncio.sleep(self.seconds)


def test_a_stripe_event_slower_than_the_lease_is_not_run_again(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    agent = SlowAgent(seconds=5 * LEASE_SECONDS)
    receiving, sweeping = replica(url, fake_graph), replica(url, fake_graph)
    session = se.session("cs_test_slow", CUSTOMER, "ORD-SLOW", 2500)
    body, headers = se.signed(se.event("checkout.session.completed", session), STRIPE_SECRET)
    app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
    request = SimpleNamespace(body=body, headers=headers, app=app)

    async def scenario() -> None:
        answer = await receiving.stripe.handle(request)  # type: ignore[arg-type]
        assert answer.status == 200
        deadline = time.monotonic() + 6 * LEASE_SECONDS
        while time.monotonic() < deadline:
            await recover(sweeping, agent, SlowRasa(0))
            await asyncio.sleep(LEASE_SECONDS / 2)
        await receiving.queues.drain()
        await sweeping.queues.drain()

    asyncio.run(scenario())
    assert agent.triggered == ["EXTERNAL_payment_succeeded"]


def test_two_sessions_of_one_order_paid_on_two_replicas_confirm_it_once(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    """Both payments reach the conversation; the later one as a duplicate, to be refunded,
    and a replay of either event keeps what was decided for it."""
    agent = SlowAgent(seconds=LEASE_SECONDS)
    replicas = [replica(url, fake_graph), replica(url, fake_graph)]
    app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
    events = [
        se.event("checkout.session.completed", se.session(session, CUSTOMER, "ORD-TWICE", 2500))
        for session in ("cs_test_first", "cs_test_second")
    ]

    def request(event: dict[str, Any]) -> Any:
        body, headers = se.signed(event, STRIPE_SECRET)
        return SimpleNamespace(body=body, headers=headers, app=app)

    async def scenario() -> None:
        answers = await asyncio.gather(
            *(each.stripe.handle(request(e)) for each, e in zip(replicas, events, strict=True))
        )
        assert [a.status for a in answers] == [200, 200]
        for each in replicas:
            await each.queues.drain()
        for event in events:  # replayed after a crash, by the other replica
            await replicas[1].stripe.process(agent, event["id"], event["type"], map_event(event))
        for each in replicas:
            await each.graph.close()

    asyncio.run(scenario())
    assert agent.triggered == ["EXTERNAL_payment_succeeded"] * 4
    decided = [(e["checkout_session_id"], e.get("duplicate_payment")) for e in agent.entities]
    live = dict(decided[:2])
    assert sorted(live.values(), key=bool) == [None, True]  # one confirms, one is refunded
    assert decided[2:] == [(s, live[s]) for s in ("cs_test_first", "cs_test_second")]
    outcomes = {replicas[0].store.stripe.outcome(e["id"]) for e in events}
    assert outcomes == {"triggered", "duplicate_payment"}


def refused_for_the_window(channel: WhatsAppInput, message_id: str, text: str) -> Any:
    """A notification we sent, and the 'failed' status Meta reports for it (131047)."""
    channel.store.messages.record_outbound(message_id, CUSTOMER, "notification", text)
    failed = meta.status(message_id, "failed", CUSTOMER, code=131047)
    (status,) = parse_notification(meta.notification(statuses=[failed])).statuses
    return status


def test_a_fallback_that_fails_once_is_sent_by_the_outbox_retry(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    channel = replica(url, fake_graph)
    channel.outputs.graph = GraphClient(  # the outbox worker sends through this one
        GraphSettings(
            fake_graph.base_url,
            fake_graph.phone_number_id,
            fake_graph.access_token,
            max_attempts=1,  # the transient failure reaches the outbox
        )
    )
    channel.outbox_worker.base_delay = 0.01
    status = refused_for_the_window(channel, "wamid.ONCE", "Order ORD-1 is paid.")
    fake_graph.queue_responses((503, {"error": {"message": "Service unavailable", "code": 2}}, {}))

    async def scenario() -> None:
        await channel.messages.statuses.handle_status(status)
        assert await channel.outbox_worker.run_once() == 0  # the 503
        await asyncio.sleep(0.1)
        assert await channel.outbox_worker.run_once() == 1
        await channel.outputs.graph.close()

    asyncio.run(scenario())
    (template,) = [m for m in fake_graph.accepted() if m.body.get("type") == "template"]
    assert template.body["template"]["components"][0]["parameters"][0]["text"] == (
        "Order ORD-1 is paid."
    )
    (entry,) = channel.store.outbox.entries()
    assert (entry.status, entry.attempts) == ("sent", 1)


def test_a_fallback_that_cannot_be_sent_is_undeliverable_in_the_outbox(
    url: str, fake_graph: GraphApiEmulator
) -> None:
    channel = replica(url, fake_graph, template=None)
    status = refused_for_the_window(channel, "wamid.NOTEMPLATE", "Order ORD-2 is paid.")

    async def scenario() -> None:
        await channel.messages.statuses.handle_status(status)
        await channel.outbox_worker.run_once()
        await channel.graph.close()

    asyncio.run(scenario())
    (entry,) = channel.store.outbox.entries()
    assert entry.status == "undeliverable" and "WHATSAPP_NOTIFICATION_TEMPLATE" in str(
        entry.last_error
    )
    assert channel.store.health()["undeliverable_notifications"] == 1
