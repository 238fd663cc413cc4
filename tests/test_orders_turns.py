"""The orders API waits for the customer's shipping turn, within a bound, and says whether
they were told: a turn that fails or does not run in time is reported, so the operator
repeats the request (the outbox's key tells the customer once). A real queue of customer
work; the bot stands in as an agent whose turn fails or hangs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from connectors.jobs.customer_queue import CustomerQueues
from connectors.jobs.outbox import OutboxWriter
from connectors.orders import turns
from connectors.orders.turns import FulfilmentTurns, Told
from connectors.storage.opening import open_store
from shop_contract.intents import ORDER_SHIPPED

ENTITIES = {"order_id": "ORD-PAID0001", "carrier": "DHL", "tracking_url": "https://t.example/1"}


class Processor:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour

    async def fetch_tracker_and_update_session(self, *_: Any) -> Any:
        if self.behaviour == "fails":
            raise ConnectionError("the action server is down")
        await asyncio.sleep(30)  # hangs


class Locks:
    def lock(self, _: str) -> Any:
        return asyncio.Lock()


class Agent:
    def __init__(self, behaviour: str) -> None:
        self.lock_store = Locks()
        self.processor = Processor(behaviour)


def told(agent: Any) -> Told:
    async def run() -> Told:
        fulfilment = FulfilmentTurns(CustomerQueues(), lambda origin: None)
        fulfilment.agent = agent
        return await fulfilment.trigger("15550831234", ORDER_SHIPPED, ENTITIES, "fulfilment:x")

    return asyncio.run(run())


def test_a_failed_turn_is_reported_not_told() -> None:
    answer = told(Agent("fails"))
    assert answer.told is False and answer.reason is not None
    assert "failed (ConnectionError)" in answer.reason and "repeat the request" in answer.reason


def test_a_turn_that_does_not_run_in_time_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "TOLD_WITHIN_SECONDS", 0.2)
    answer = told(Agent("hangs"))
    assert answer.told is False and answer.reason is not None and "still queued" in answer.reason


def test_before_the_bot_runs_nobody_is_told() -> None:
    answer = told(None)
    assert answer.told is False and answer.reason is not None and "not running" in answer.reason


class Speaking:
    """An agent whose turn runs; `speaks`: the action queues its message, else it stays
    silent (the conversation no longer holds the order)."""

    def __init__(self, speaks: bool) -> None:
        self.speaks = speaks
        self.lock_store = Locks()
        self.processor = self

    async def fetch_tracker_and_update_session(self, *_: Any) -> Any:
        return None

    async def trigger_intent(self, output_channel: Any, **_: Any) -> None:
        if self.speaks:
            await output_channel.enqueue("15550831234", {"type": "text"})


@pytest.mark.parametrize("speaks", [True, False])
def test_told_means_a_message_was_queued_under_the_turns_origin(
    tmp_path: Path, speaks: bool
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'turns.db'}")

    async def run() -> Told:
        fulfilment = FulfilmentTurns(
            CustomerQueues(), lambda origin: OutboxWriter(store, origin, None), store
        )
        fulfilment.agent = Speaking(speaks)
        return await fulfilment.trigger("15550831234", ORDER_SHIPPED, ENTITIES, "fulfilment:y")

    answer = asyncio.run(run())
    assert answer.told is speaks
    assert speaks or (answer.reason is not None and "sent no message" in answer.reason)


@pytest.mark.parametrize("refusal", [None, "outside the 24-hour window and no template"])
def test_told_means_the_queued_message_can_reach_the_customer(
    tmp_path: Path, refusal: str | None
) -> None:
    """No template and a closed window: the outbox will set the message aside, so the
    operator hears that the customer was not told, and why."""
    store = open_store(f"sqlite:///{tmp_path / 'turns.db'}")

    async def run() -> Told:
        fulfilment = FulfilmentTurns(
            CustomerQueues(),
            lambda origin: OutboxWriter(store, origin, None),
            store,
            lambda customer: refusal,
        )
        fulfilment.agent = Speaking(True)
        return await fulfilment.trigger("15550831234", ORDER_SHIPPED, ENTITIES, "fulfilment:z")

    answer = asyncio.run(run())
    assert answer.told is (refusal is None)
    assert refusal is None or (
        answer.reason is not None and refusal in answer.reason and "another way" in answer.reason
    )
