"""The hand-over's bookkeeping and deliveries: the shop told once, each customer message
forwarded once, staff replies through the outbox (a template once the 24-hour window has
closed), and the signed webhook, checked here with hashlib as a shop's receiver would, against
a real receiver on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectors.handover.delivery import OutboxDelivery
from connectors.handover.desk import HandoverDesk, HandoverEnded, UnknownHandover
from connectors.handover.shop_webhook import SIGNATURE_HEADER, ShopWebhook, ShopWebhookError
from connectors.jobs.outbox import OutboxWorker
from connectors.settings import HandoverSettings, WhatsAppSettings
from connectors.storage.opening import open_store
from connectors.storage.outbox import SIDE_QUEUE
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.graph import GraphClient, GraphSettings
from connectors.whatsapp.output import WhatsAppOutput
from sandbox.graph_api import GraphApiEmulator
from sandbox.loopback import LoopbackServer

CUSTOMER = "15550811234"
STAFF = "15550819999"
SECRET = secrets.token_hex(16)


class Receiver(LoopbackServer):
    """A shop's webhook receiver that keeps every request raw; answers `status`."""

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.requests: list[tuple[bytes, dict[str, str]]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((await request.read(), dict(request.headers)))
        if 300 <= self.status < 400 and request.path == "/hooks/handover":
            return web.Response(status=self.status, headers={"Location": "/elsewhere"})
        return web.json_response({}, status=200 if 300 <= self.status < 400 else self.status)

    @property
    def url(self) -> str:
        return f"{self.origin}/hooks/handover"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'handover.db'}")


def desk_for(store: ConnectorStore, url: str | None, staff: str | None = STAFF) -> HandoverDesk:
    secrets_ = (SECRET,) if url else ()
    return HandoverDesk(store, HandoverSettings(url, secrets_, staff))


def queued(store: ConnectorStore) -> dict[str, dict[str, Any]]:
    """The outbox's bodies by the hand-over thing they are (its key's last parts)."""
    with store.engine.connect() as connection:
        keys = [
            row[0]
            for row in connection.exec_driver_sql(
                "select dedup_key from notification_outbox order by id"
            )
        ]
    bodies = [json.loads(entry.body) for entry in store.outbox.entries()]
    return {
        key.removeprefix(SIDE_QUEUE).split(":", 2)[2]: body
        for key, body in zip(keys, bodies, strict=True)
    }


@pytest.mark.parametrize("staff", [None, STAFF], ids=["nobody", "staff number only"])
def test_without_the_shop_webhook_there_is_no_hand_over(
    store: ConnectorStore, staff: str | None
) -> None:
    """The staff alert only says that someone waits; the customer's messages would reach
    nobody, so without HANDOVER_WEBHOOK_URL the bot keeps answering."""
    desk = HandoverDesk(store, HandoverSettings(staff_wa_id=staff))
    assert desk.start(CUSTOMER, "asked", ["a person please"], "") is None
    assert store.handovers.current(CUSTOMER) is None and store.outbox.entries() == []


def test_the_shop_is_told_once_and_each_message_forwarded_once(store: ConnectorStore) -> None:
    desk = desk_for(store, "http://127.0.0.1:9/handover")
    handover = desk.start(CUSTOMER, "complaint", ["the beans were stale"], "A person answers.")
    assert handover is not None
    assert desk.start(CUSTOMER, "complaint", ["again"], "again") == handover  # replayed turn
    for _ in range(2):  # Meta re-delivered it, or the message was replayed
        desk.forward(handover, "wamid.ONE", {"kind": "text", "text": "hello?"})
    desk.forward(handover, "wamid.TWO", {"kind": "media", "text": "photo of the bag"})
    things = queued(store)
    assert list(things)[:3] == ["started", "staff", "paused"] and len(things) == 5
    assert things["paused"] == {"type": "text", "text": {"body": "A person answers."}}
    started = things["started"]["event"]
    assert started["id"] == f"handover:{handover.ref}:started"
    assert (started["type"], started["transcript"]) == (
        "handover.started",
        ["the beans were stale"],
    )
    assert (
        started["links"]["reply"] == f"/webhooks/whatsapp/operator/handovers/{handover.ref}/reply"
    )
    staff = things["staff"]["text"]["body"]
    assert handover.ref in staff and CUSTOMER not in staff and "complaint" in staff
    forwarded = [b["event"]["message"] for k, b in things.items() if k.startswith("message:")]
    assert forwarded == [
        {"kind": "text", "text": "hello?"},
        {"kind": "media", "text": "photo of the bag"},
    ]
    assert CUSTOMER not in json.dumps(things)


def test_staff_reply_and_end_only_an_open_hand_over(store: ConnectorStore) -> None:
    desk = desk_for(store, "http://127.0.0.1:9/handover", staff=None)
    handover = desk.start(CUSTOMER, "asked", [], "")
    assert handover is not None
    with pytest.raises(UnknownHandover, match="no hand-over H-NOPE"):
        desk.reply("H-NOPE", "hi")
    desk.reply(handover.ref, "Hello, Anna from the shop here.", "retry-1")
    desk.reply(handover.ref, "Hello, Anna from the shop here.", "retry-1")  # a retried request
    ended = desk.end(handover.ref, "staff")
    assert (ended.status, ended.ended_by) == ("ended", "staff")
    with pytest.raises(HandoverEnded, match="has ended"):
        desk.reply(handover.ref, "too late")
    with pytest.raises(HandoverEnded):
        desk.end(handover.ref, "timeout")
    things = queued(store)
    assert list(things) == ["started", "reply:retry-1", "ended"]
    assert things["reply:retry-1"] == {
        "type": "text",
        "text": {"body": "Hello, Anna from the shop here."},
    }
    assert things["ended"]["event"]["ended_by"] == "staff"
    found = store.handovers.find(handover.ref)
    assert found is not None and found.staff_replied_at is not None


def signature_holds(body: bytes, header: str, secret: str, now: float) -> bool:
    """The README's check, written out: t within five minutes, v1 = HMAC-SHA256 of "t.body"."""
    parts = [part.split("=", 1) for part in header.split(",")]
    timestamp = int(next(value for name, value in parts if name == "t"))
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    v1 = [value for name, value in parts if name == "v1"]
    return abs(now - timestamp) <= 300 and any(hmac.compare_digest(expected, v) for v in v1)


def test_the_webhook_is_signed_over_the_raw_body(receiver: Receiver) -> None:
    old, new = secrets.token_hex(16), secrets.token_hex(16)
    event = {"id": "handover:H-TEST2345:started", "type": "handover.started", "text": "ünïcode"}

    async def post() -> None:
        webhook = ShopWebhook(receiver.url, (new, old))
        try:
            await webhook.post(event)
        finally:
            await webhook.close()

    asyncio.run(post())
    ((body, headers),) = receiver.requests
    assert json.loads(body) == event and headers["X-Handover-Event"] == "handover.started"
    header = headers[SIGNATURE_HEADER]
    assert header.count("v1=") == 2  # one per secret while one is rotated
    assert signature_holds(body, header, old, time.time())
    assert signature_holds(body, header, new, time.time())
    assert not signature_holds(body + b" ", header, new, time.time())  # altered
    assert not signature_holds(body, header, secrets.token_hex(16), time.time())
    assert not signature_holds(body, header, new, time.time() + 301)  # replayed later


def test_a_refusing_or_absent_receiver_is_an_error_to_retry(receiver: Receiver) -> None:
    receiver.status = 503

    async def post(url: str) -> None:
        webhook = ShopWebhook(url, (SECRET,))
        try:
            await webhook.post({"id": "x", "type": "handover.ended"})
        finally:
            await webhook.close()

    with pytest.raises(ShopWebhookError, match="answered 503"):
        asyncio.run(post(receiver.url))
    for redirect in (301, 302, 307):  # a GET without the event, or the event elsewhere
        receiver.status, receiver.requests = redirect, []
        with pytest.raises(ShopWebhookError, match=f"answered {redirect}, a redirect"):
            asyncio.run(post(receiver.url))
        assert [headers["X-Handover-Event"] for _, headers in receiver.requests] == [
            "handover.ended"
        ]
    receiver.stop()
    with pytest.raises(ShopWebhookError, match="no answer"):
        asyncio.run(post(receiver.url))


def test_the_outbox_delivers_to_the_shop_the_staff_and_the_customer(
    store: ConnectorStore, receiver: Receiver, fake_graph: GraphApiEmulator
) -> None:
    """The customer's window is open (they just wrote): a reply goes as text; the staff
    number never wrote, so its alert goes as the Utility template. A receiver that fails
    once gets the event again, never twice after it accepted it."""
    desk = desk_for(store, receiver.url)
    handover = desk.start(CUSTOMER, "asked", ["can I talk to someone"], "")
    assert handover is not None
    store.messages.touch_customer(CUSTOMER, time.time())
    desk.reply(handover.ref, "Hi, this is Ben from the shop.")
    settings = WhatsAppSettings(
        "token",
        fake_graph.phone_number_id,
        ("s",),
        "v",
        fake_graph.base_url,
        notification_template="order_update",
    )
    graph = GraphClient(
        GraphSettings(fake_graph.base_url, fake_graph.phone_number_id, fake_graph.access_token)
    )
    output = WhatsAppOutput(settings, graph, store, notifications=True)
    webhook = ShopWebhook(receiver.url, (SECRET,))
    worker = OutboxWorker(store, OutboxDelivery(output.deliver, webhook, STAFF), 0.01, 0.01)
    receiver.status = 500

    async def rounds() -> None:
        try:
            await worker.run_once()
            receiver.status = 200
            await asyncio.sleep(0.05)  # the failed entry's backoff (base 0.01 s)
            await worker.run_once()
            await worker.run_once()
        finally:
            await webhook.close()
            await graph.close()

    asyncio.run(rounds())
    assert [e["type"] for e in receiver.events()] == ["handover.started"] * 2  # failed, then ok
    assert {e.status for e in store.outbox.entries()} == {"sent"}
    sent = {m.get("to"): m for m in fake_graph.messages()}
    assert sent[CUSTOMER]["text"]["body"] == "Hi, this is Ben from the shop."
    assert sent[STAFF]["type"] == "template" and handover.ref in json.dumps(sent[STAFF])
