"""The pause around a hand-over's opening: a failure between opening it and telling the shop
and the customer must not leave the customer paused with nobody told (the replayed message
would then only be forwarded)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from connectors.edge.signatures import timestamped_signature
from connectors.handover.desk import HandoverDesk
from connectors.handover.pause import HandoverPause
from connectors.jobs.customer_queue import CustomerQueues
from connectors.settings import HandoverSettings
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.webhook import noting_handover
from shop_contract.custom_messages import (
    HANDOVER_PAUSED_TEXT,
    HANDOVER_REASON,
    HANDOVER_TRANSCRIPT,
    HANDOVER_UNAVAILABLE_TEXT,
)
from shop_contract.entities import HANDED_OVER, ORDER_ID
from shop_contract.intents import CHECKOUT_EXPIRED
from tests.test_handover_desk import queued

CUSTOMER = "15550811234"
STAFF = "15550819999"
REQUEST = {
    HANDOVER_REASON: "complaint",
    HANDOVER_TRANSCRIPT: ["the beans were stale"],
    HANDOVER_PAUSED_TEXT: "A person from the shop will answer here.",
    HANDOVER_UNAVAILABLE_TEXT: "Please write to the shop.",
}


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'pause.db'}")


def pause_for(store: ConnectorStore) -> HandoverPause:
    settings = HandoverSettings("http://127.0.0.1:9/handover", ("s" * 32,), STAFF)

    async def flush() -> None:
        pass

    return HandoverPause(
        HandoverDesk(store, settings),
        CustomerQueues(),
        lambda _: None,
        asyncio.Event(),
        flush,
        60,
        60,
    )


def test_a_failure_while_telling_the_shop_opens_no_silent_hand_over(
    store: ConnectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox write fails once (a database error) after the hand-over row could be
    written: the message is replayed, and the replay tells the shop and the customer."""
    enqueue = store.outbox.enqueue
    failures = [OperationalError("insert", {}, Exception("database is locked"))]

    def failing_once(*args: Any, **kwargs: Any) -> bool:
        if failures:
            raise failures.pop()
        return enqueue(*args, **kwargs)

    monkeypatch.setattr(store.outbox, "enqueue", failing_once)
    pause = pause_for(store)
    told: list[str] = []

    async def send_text(text: str) -> None:
        told.append(text)

    async def message_then_replay() -> None:
        with pytest.raises(OperationalError):
            await pause.start(CUSTOMER, REQUEST, send_text)
        # the recovery sweep replays the message: paused only if everyone was told
        if not await pause.intercept(CUSTOMER, "wamid.ONE", {"kind": "text", "text": "hi"}):
            await pause.start(CUSTOMER, REQUEST, send_text)  # the bot's turn runs again

    asyncio.run(message_then_replay())
    things = queued(store)
    assert {"started", "staff", "paused"} <= set(things)
    assert things["paused"] == {"type": "text", "text": {"body": REQUEST[HANDOVER_PAUSED_TEXT]}}
    assert told == []  # the paused text goes through the outbox, once
    handover = store.handovers.current(CUSTOMER)
    assert handover is not None and handover.is_open


def readme_receiver() -> Any:
    """The README's sample receiver check (`valid`), run as a shop would copy it."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("import hashlib, hmac, time")
    namespace: dict[str, Any] = {}
    exec(readme[start : readme.index("```", start)], namespace)  # noqa: S102 - our README
    return namespace["valid"]


def test_the_readmes_receiver_refuses_malformed_headers_instead_of_raising() -> None:
    valid = readme_receiver()
    body, secret = b'{"id":"handover:H-TEST2345:started"}', "s" * 32
    header = timestamped_signature(body, (secret,), int(time.time()))
    assert valid(body, header, secret)
    assert not valid(body + b" ", header, secret)
    v1 = header.split(",", 1)[1]
    for malformed in (v1, f"t=abc,{v1}", f"{header},junk", "t=1,v1=é", "", f"t=٣,{v1}"):
        assert valid(body, malformed, secret) is False, malformed


def test_a_stripe_or_reminder_turn_says_a_person_has_it_only_while_that_is_so(
    store: ConnectorStore,
) -> None:
    """What silences the automatic nudges (tests/test_followups.py): a hand-over that
    pauses the bot, not a person once asked for, nor one past its timeout."""
    pause = pause_for(store)
    turn = EventIntent(CUSTOMER, CHECKOUT_EXPIRED, {ORDER_ID: "ORD-1"})

    def noted(customer_turn: EventIntent) -> EventIntent:
        return asyncio.run(noting_handover(pause.person_has, customer_turn))

    assert noted(turn) == turn  # never handed over
    handover, _ = store.handovers.open(CUSTOMER, "asked")
    assert noted(turn).entities == {ORDER_ID: "ORD-1", HANDED_OVER: True}
    other = EventIntent("15550819999", CHECKOUT_EXPIRED)
    assert noted(other) == other  # another customer's
    pause.timeout_seconds = 0  # nobody from the shop wrote in time: the bot has it again
    assert noted(turn) == turn
    pause.timeout_seconds = 3600
    assert store.handovers.end(handover.ref, "staff")
    assert noted(turn) == turn
