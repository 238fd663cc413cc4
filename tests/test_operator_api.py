"""The operator API's answers (off, unauthenticated, bad input, unknown or ended hand-overs),
the pause's decision per customer message, and `make chat` (scripts/chat_cli.py) on a real
database. The live bot's routes are exercised over HTTP in tests/test_faq_live.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sanic.response import HTTPResponse

from connectors.settings import FlowSettings, HandoverSettings, WhatsAppSettings
from connectors.storage.handovers import Handover
from connectors.storage.opening import open_store
from connectors.storage.schema import handovers
from connectors.storage.store import ConnectorStore
from connectors.whatsapp.channel import WhatsAppInput
from scripts import chat_cli
from shop_contract.intents import HANDOVER_ENDED

TOKEN = secrets.token_urlsafe(24)
CUSTOMER = "15550821234"


@dataclass
class FakeRequest:
    """What the operator handlers read from a Sanic request."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def authorized(body: Any = None, **headers: str) -> FakeRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return FakeRequest(raw, {"Authorization": f"Bearer {TOKEN}", **headers})


def answer(response: HTTPResponse) -> tuple[int, dict[str, Any]]:
    return response.status, json.loads(response.body or b"{}")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    database = f"sqlite:///{tmp_path / 'operator.db'}"
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("HANDOVER_WEBHOOK_URL", "http://127.0.0.1:9/handover")
    monkeypatch.setenv("HANDOVER_WEBHOOK_SECRET", secrets.token_hex(16))
    return database


def channel(store: ConnectorStore, token: str | None = TOKEN, **handover: Any) -> WhatsAppInput:
    settings = WhatsAppSettings("token", "123", ("s",), "verify", "http://127.0.0.1:9/v23.0")
    webhook = {"webhook_url": "http://127.0.0.1:9/handover", "webhook_secrets": ("x" * 16,)}
    options = HandoverSettings(**{**webhook, "operator_token": token, **handover})
    return WhatsAppInput(settings, store, FlowSettings(None), (), options)


def opened(store: ConnectorStore, customer: str = CUSTOMER) -> Handover:
    handover, _ = store.handovers.open(customer, "complaint")
    return handover


def test_without_a_token_the_api_is_off(url: str) -> None:
    operator = channel(open_store(url), token=None).operator
    refusal = operator.refusal(authorized({"text": "hi"}))  # type: ignore[arg-type]
    assert refusal is not None and answer(refusal) == (404, {"error": "not found"})


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-some-length", TOKEN],
    ids=["missing", "wrong", "without Bearer"],  # stable: xdist collects on each worker
)
def test_a_missing_or_wrong_token_is_a_401(url: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    refusal = channel(open_store(url)).operator.refusal(FakeRequest(b"", headers))  # type: ignore[arg-type]
    assert refusal is not None and refusal.status == 401
    assert refusal.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("body", "headers", "said"),
    [
        (b"{not json", {}, "the body must be JSON"),
        ({"text": "   "}, {}, '"text" is required'),
        ({"message": "hi"}, {}, '"text" is required'),
        (["hi"], {}, '"text" is required'),
        ({"text": "x" * 4097}, {}, "longer than WhatsApp's 4096 characters"),
        ({"text": "hi"}, {"Idempotency-Key": "no spaces allowed"}, "Idempotency-Key"),
    ],
)
def test_a_bad_reply_is_a_400_saying_what_is_wrong(
    url: str, body: Any, headers: dict[str, str], said: str
) -> None:
    store = open_store(url)
    api = channel(store).operator
    status, error = answer(asyncio.run(api.reply(authorized(body, **headers), opened(store).ref)))  # type: ignore[arg-type]
    assert status == 400 and said in error["error"]
    assert store.outbox.entries() == []


def test_replies_and_resume_on_open_unknown_and_ended_hand_overs(url: str) -> None:
    store = open_store(url)
    input_channel = channel(store)
    api = input_channel.operator
    handover = opened(store)

    async def calls() -> list[tuple[int, dict[str, Any]]]:
        reply = authorized({"text": "Hi, Anna here."}, **{"Idempotency-Key": "k-1"})
        other_text = authorized({"text": "Hi, Ben here."}, **{"Idempotency-Key": "k-1"})
        results = [
            answer(await api.handovers()),
            answer(await api.reply(reply, "H-2345ABCD")),  # type: ignore[arg-type]
            answer(await api.reply(reply, "not a ref")),  # type: ignore[arg-type]
            answer(await api.reply(reply, handover.ref)),  # type: ignore[arg-type]
            answer(await api.reply(reply, handover.ref)),  # type: ignore[arg-type]  # retried
            answer(await api.reply(other_text, handover.ref)),  # type: ignore[arg-type]
            answer(await api.resume(handover.ref)),
            answer(await api.resume(handover.ref)),
            answer(await api.reply(reply, handover.ref)),  # type: ignore[arg-type]
            answer(await api.handovers()),
        ]
        await input_channel.queues.drain()  # the hand-back (no Rasa here: left to the sweep)
        return results

    results = asyncio.run(calls())
    listing, unknown, malformed, sent, retried, reused, resumed, again, late, after = results
    assert listing == (200, {"handovers": [{
        "ref": handover.ref, "reason": "complaint", "status": "open",
        "opened_at": handover.opened_at, "staff_replied_at": None,
    }]})  # fmt: skip
    assert unknown == (404, {"error": "no hand-over H-2345ABCD"}) and malformed[0] == 404
    assert sent == retried == (202, {"ref": handover.ref, "status": "queued"})
    assert (
        reused[0] == 409 and "Idempotency-Key k-1 was used for another text" in reused[1]["error"]
    )
    assert resumed == (200, {"ref": handover.ref, "status": "resumed"})
    assert again[0] == late[0] == 409 and "has ended" in late[1]["error"]
    assert after == (200, {"handovers": []})
    kinds = [json.loads(entry.body)["type"] for entry in store.outbox.entries()]
    assert kinds == ["text", "handover_webhook"]  # the reply once, the shop told of the end
    assert [h.ref for h in store.handovers.to_hand_back(60)] == [handover.ref]


def test_a_message_is_held_back_while_the_hand_over_is_open_and_not_after_its_timeout(
    url: str,
) -> None:
    store = open_store(url)
    pause = channel(store, timeout_minutes=30).handover
    handover = opened(store)
    content = {"kind": "text", "text": "are you there?"}
    assert asyncio.run(pause.intercept(CUSTOMER, "wamid.1", content)) is True
    assert asyncio.run(pause.intercept("15550820000", "wamid.2", content)) is False  # no hand-over
    with store.engine.begin() as connection:  # nobody from the shop wrote for 31 minutes
        connection.execute(handovers.update().values(opened_at=handovers.c.opened_at - 31 * 60))
    assert asyncio.run(pause.intercept(CUSTOMER, "wamid.3", content)) is False
    ended = store.handovers.find(handover.ref)
    assert ended is not None and (ended.status, ended.ended_by) == ("ended", "timeout")
    events = [json.loads(e.body)["event"] for e in store.outbox.entries()]
    assert [(e["type"], e.get("message")) for e in events] == [
        ("handover.message", content),
        ("handover.ended", None),
    ]


@dataclass
class Agent:
    """What the external-event path uses of Rasa's agent: records the intents triggered."""

    triggered: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock_store = self.processor = self

    @contextlib.asynccontextmanager
    async def lock(self, _: str) -> AsyncIterator[None]:
        yield

    async def fetch_tracker_and_update_session(self, customer: str, *_: Any) -> str:
        return customer

    async def trigger_intent(self, intent_name: str, entities: Any, tracker: str, **_: Any) -> None:
        self.triggered.append((tracker, intent_name, entities))


def test_the_sweep_ends_quiet_hand_overs_and_hands_each_back_once(url: str) -> None:
    """Two replicas sweep at once: one ended by the timeout and one ended by `make chat`
    are each handed back to the bot once; the next sweeps find nothing left to do."""
    store = open_store(url)
    quiet, resumed = opened(store, "15550820001"), opened(store, "15550820002")
    with store.engine.begin() as connection:
        connection.execute(
            handovers.update()
            .where(handovers.c.ref == quiet.ref)
            .values(opened_at=handovers.c.opened_at - 31 * 60)
        )
    assert chat_cli.main(["resume", resumed.ref]) == 0
    agent = Agent()
    replicas = [channel(open_store(url), timeout_minutes=30) for _ in range(2)]
    for replica in replicas:
        replica.handover.agent = agent

    async def sweeps() -> None:
        for _ in range(2):
            await asyncio.gather(*(replica.handover.sweep() for replica in replicas))
            await asyncio.gather(*(replica.queues.drain() for replica in replicas))

    asyncio.run(sweeps())
    assert sorted(agent.triggered) == [
        ("15550820001", HANDOVER_ENDED, {"handover_ended_by": "timeout"}),
        ("15550820002", HANDOVER_ENDED, {"handover_ended_by": "staff"}),
    ]
    assert store.handovers.current("15550820001") is None  # handed back: the bot answers
    assert store.handovers.current("15550820002") is None


def test_chat_cli_lists_replies_and_resumes(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = open_store(url)
    handover = opened(store)
    assert chat_cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert handover.ref in listed and "complaint" in listed and "1 open hand-over(s)" in listed
    assert CUSTOMER not in listed
    assert chat_cli.main(["reply", handover.ref, "Hello,", "Ben", "here."]) == 0
    assert "reply queued" in capsys.readouterr().out
    (entry,) = store.outbox.entries()
    assert json.loads(entry.body) == {"type": "text", "text": {"body": "Hello, Ben here."}}
    assert chat_cli.main(["resume", handover.ref]) == 0
    assert "the bot answers this customer again" in capsys.readouterr().out
    assert chat_cli.main(["resume", handover.ref]) == 1
    assert "has ended" in capsys.readouterr().err
    assert chat_cli.main(["reply", "H-2345ABCD", "hi"]) == 1
    assert "no hand-over H-2345ABCD" in capsys.readouterr().err
    assert chat_cli.main(["reply", handover.ref, " "]) == 1


def test_chat_cli_says_what_is_wrong_with_a_setting(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HANDOVER_WEBHOOK_SECRET", "short")
    assert chat_cli.main(["list"]) == 2
    assert "HANDOVER_WEBHOOK_SECRET: too short" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        chat_cli.main(["reply"])  # argparse: the reference and the text are required
