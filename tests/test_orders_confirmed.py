"""The index lists and acts on an order only once the bot confirmed its payment: the
conversation (Rasa's tracker, as the connector reads it after the paid session's turn) shows
the order paid by that session. A payment the bot refused (a cancelled order's, refunded
automatically; amounts, currency or livemode not matching; an order the conversation does
not hold) stays unconfirmed, listed apart, and nothing ships or refunds it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.events import SlotSet
from rasa.shared.core.slots import AnySlot
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.orders.desk import OrdersDesk
from connectors.orders.turns import FulfilmentTurns, Told
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent
from connectors.stripe.paid_index import confirm_paid, index_event
from tests.support import paid_orders

TRACKING = "https://track.example/1"


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'orders.db'}")


@dataclass
class Trackers:
    """Rasa's tracker store as the connector reads it: one customer's conversation."""

    orders: Any
    domain = None  # what Rasa's FailSafeTrackerStore reads of the store it wraps
    event_broker = None

    async def retrieve(self, sender_id: str) -> DialogueStateTracker:
        slot = AnySlot("orders", mappings=[{}])
        return DialogueStateTracker.from_events(
            sender_id, [SlotSet("orders", self.orders)], slots=[slot]
        )


@dataclass
class Agent:
    tracker_store: Trackers


def paid_event(order_id: str) -> EventIntent:
    return paid_orders.paid_event(order_id, payment_intent=f"pi_{order_id}")


def record(status: str, session: str | None) -> dict[str, Any]:
    return {"order_status": status, "order_paid_session": session}


@pytest.mark.parametrize(
    ("held", "confirmed"),
    [
        ({"ORD-A": record("paid", "cs_ORD-A")}, True),
        ({"ORD-A": record("partially_refunded", "cs_ORD-A")}, True),
        ({"ORD-A": record("cancelled", None)}, False),  # a cancelled order's copy, refunded
        ({"ORD-A": record("awaiting_payment", None)}, False),  # the payment did not match
        ({"ORD-A": record("paid", "cs_other")}, False),  # paid by another session
        ({"ORD-B": record("paid", "cs_ORD-A")}, False),  # the conversation has no such order
        (None, False),
    ],
    ids=["paid", "part-refunded", "cancelled", "mismatch", "other-session", "unknown", "none"],
)
def test_only_an_order_the_conversation_shows_paid_is_confirmed(
    store: ConnectorStore, held: Any, confirmed: bool
) -> None:
    event = paid_event("ORD-A")
    asyncio.run(index_event(store, event))
    asyncio.run(confirm_paid(store, Agent(Trackers(held)), event))
    order = store.paid_orders.get("ORD-A")
    assert order is not None and order.confirmed is confirmed
    assert [o.order_id for o in store.paid_orders.listing("paid")] == (
        ["ORD-A"] if confirmed else []
    )
    assert [o.order_id for o in store.paid_orders.listing("unconfirmed")] == (
        [] if confirmed else ["ORD-A"]
    )


def test_nothing_ships_delivers_or_refunds_an_unconfirmed_order(store: ConnectorStore) -> None:
    event = paid_event("ORD-A")
    asyncio.run(index_event(store, event))
    asyncio.run(confirm_paid(store, Agent(Trackers({"ORD-A": record("cancelled", None)})), event))
    told: list[Any] = []

    async def trigger(*asked: Any) -> Told:
        told.append(asked)
        return Told(True)

    desk = OrdersDesk(store, object(), trigger)  # type: ignore[arg-type]
    for attempt in (
        desk.ship("ORD-A", "DHL", TRACKING),
        desk.deliver("ORD-A"),
        desk.refund("ORD-A", None, "k1"),
    ):
        with pytest.raises(Exception, match="never confirmed it") as refused:
            asyncio.run(attempt)
        assert getattr(refused.value, "status", None) == 409
    assert told == []
    listed, more = asyncio.run(desk.listing("unconfirmed"))
    assert [(o["order_id"], o["confirmed"]) for o in listed] == [("ORD-A", False)]
    assert more is False


class Failing:
    """A tracker store that fails while a database restarts."""

    domain = None
    event_broker = None

    async def retrieve(self, sender_id: str) -> DialogueStateTracker:
        raise ConnectionError("database restarting")


def test_a_tracker_store_error_is_not_read_as_unpaid(store: ConnectorStore) -> None:
    """Rasa's agent wraps the store in FailSafeTrackerStore, which answers None on an error:
    the look reads the real store, so the error replays the event instead of leaving the
    order unconfirmed for good."""
    event = paid_event("ORD-A")
    asyncio.run(index_event(store, event))
    wrapped = FailSafeTrackerStore(Failing())
    with pytest.raises(ConnectionError):
        asyncio.run(confirm_paid(store, Agent(wrapped), event))
    held = Trackers({"ORD-A": record("paid", "cs_ORD-A")})
    asyncio.run(confirm_paid(store, Agent(FailSafeTrackerStore(held)), event))
    order = store.paid_orders.get("ORD-A")
    assert order is not None and order.confirmed is True


def test_shipping_an_order_whose_look_missed_looks_again(store: ConnectorStore) -> None:
    event = paid_event("ORD-A")
    asyncio.run(index_event(store, event))
    asyncio.run(confirm_paid(store, Agent(Trackers(None)), event))  # the look missed
    turns = FulfilmentTurns(None, lambda origin: None, store)  # type: ignore[arg-type]
    told: list[Any] = []

    async def trigger(*asked: Any) -> Told:
        told.append(asked)
        return Told(True)

    desk = OrdersDesk(store, None, trigger, turns.reconfirm)
    turns.agent = Agent(Trackers({"ORD-A": record("cancelled", None)}))
    with pytest.raises(Exception, match="never confirmed it"):
        asyncio.run(desk.deliver("ORD-A"))  # the conversation does not show it paid
    turns.agent = Agent(Trackers({"ORD-A": record("paid", "cs_ORD-A")}))
    answer = asyncio.run(desk.ship("ORD-A", "DHL", TRACKING))
    assert (answer["confirmed"], answer["fulfilment"], len(told)) == (True, "shipped", 1)
