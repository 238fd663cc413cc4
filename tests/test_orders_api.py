"""The orders API and its desk in-process on a real database (off without a token, every
refusal with its status and reason, nothing triggered or refunded when refused), the index
fed from mapped Stripe events, and `make orders`' own refusals. Shipping, delivering and
refunding through the running bot: tests/test_orders_live.py."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sanic.response import HTTPResponse

from connectors.orders import desk as desk_module
from connectors.orders.api import OrdersApi
from connectors.orders.desk import OrdersDesk, outbox_origin, refund_key
from connectors.orders.turns import Told
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from connectors.stripe.events import EventIntent, map_event
from connectors.stripe.paid_index import index_event
from scripts import orders_cli
from shop_contract.fulfilment import Fulfilment
from shop_contract.intents import ORDER_SHIPPED, PAYMENT_SUCCEEDED, REFUNDED
from tests.support import paid_orders
from tests.support.paid_orders import CUSTOMER, ORDER

TOKEN = secrets.token_urlsafe(24)
TRACKING = "https://track.example/1"


@dataclass
class FakeRequest:
    """What the orders handlers read from a Sanic request."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)


def authorized(body: Any = None, **headers: str) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    return FakeRequest(raw, {"Authorization": f"Bearer {TOKEN}", **headers})


def answer(response: HTTPResponse) -> tuple[int, dict[str, Any]]:
    return response.status, json.loads(response.body or b"{}")


@pytest.fixture
def store(tmp_path: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{tmp_path / 'orders.db'}")


@dataclass
class Turns:
    """The turns the desk asked for, instead of Rasa's."""

    asked: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)

    async def trigger(
        self, customer: str, intent: str, entities: dict[str, Any], origin: str
    ) -> Told:
        self.asked.append((customer, intent, entities, origin))
        return Told(True)


def paid(store: ConnectorStore, order_id: str = ORDER, **paid_as: Any) -> None:
    paid_orders.paid(store, order_id, **{"amount": 2580, **paid_as})


def test_without_a_token_every_route_is_a_404(store: ConnectorStore) -> None:
    api = OrdersApi(None, OrdersDesk(store, None, Turns().trigger))
    refusal = api.refusal(authorized())
    assert refusal is not None and answer(refusal) == (404, {"error": "not found"})


@pytest.mark.parametrize(
    "authorization", [None, "Bearer " + "w" * 32, TOKEN], ids=["missing", "wrong", "no Bearer"]
)
def test_a_missing_or_wrong_token_is_a_401(
    store: ConnectorStore, authorization: str | None
) -> None:
    api = OrdersApi(TOKEN, OrdersDesk(store, None, Turns().trigger))
    headers = {} if authorization is None else {"Authorization": authorization}
    refusal = api.refusal(FakeRequest(b"", headers))  # type: ignore[arg-type]
    assert refusal is not None and refusal.status == 401
    assert api.refusal(authorized()) is None


def test_paid_sessions_and_refunds_feed_the_index_duplicates_not(store: ConnectorStore) -> None:
    paid(store)
    paid(store)  # re-delivered
    duplicate = EventIntent(
        CUSTOMER,
        PAYMENT_SUCCEEDED,
        {"order_id": "ORD-PAID0001", "checkout_session_id": "cs_second", "amount_total": 2580,
         "currency": "eur", "payment_intent": "pi_2"},
        fulfilment_key="cs_second",
    )  # fmt: skip
    asyncio.run(index_event(store, duplicate))
    for payment_intent, refunded in (("pi_2", 2580), ("pi_1", 500), ("pi_1", 300)):
        refund = EventIntent(
            CUSTOMER,
            REFUNDED,
            {"order_id": "ORD-PAID0001", "payment_intent": payment_intent,
             "amount_refunded": refunded, "amount": 2580},
        )  # fmt: skip
        asyncio.run(index_event(store, refund))
    order = store.paid_orders.get("ORD-PAID0001")
    assert order is not None
    assert (order.checkout_session_id, order.payment_intent, order.amount_refunded) == (
        "cs_ORD-PAID0001",
        "pi_1",
        500,  # the duplicate's refund is not this payment's; an older event lowers nothing
    )


def test_refusals_say_why_and_change_nothing(store: ConnectorStore) -> None:
    paid(store)
    paid(store, "ORD-SUBSCRIP", payment_intent=None, subscription="sub_1")
    turns = Turns()
    api = OrdersApi(TOKEN, OrdersDesk(store, None, turns.trigger))

    def act(order: str, action: str, body: Any = None, **headers: str) -> tuple[int, str]:
        status, said = answer(asyncio.run(api.act(authorized(body, **headers), order, action)))
        return status, str(said.get("error", ""))

    assert act("ORD-UNKNOWN1", "deliver")[0] == 404
    assert act("ORD-PAID0001!", "deliver")[0] == 400
    assert act("ORD-PAID0001", "ship", {"carrier": "DHL"})[1].startswith("tracking URL")
    assert act("ORD-PAID0001", "ship", {"carrier": "", "tracking_url": TRACKING})[0] == 400
    bad_link = {"carrier": "DHL", "tracking_url": "http://track.example/1"}
    assert act("ORD-PAID0001", "ship", bad_link) == (
        400,
        "tracking URL must be an https:// address",
    )
    raw = FakeRequest(b"{nope", {"Authorization": f"Bearer {TOKEN}"})
    assert answer(asyncio.run(api.act(raw, "ORD-PAID0001", "ship")))[0] == 400  # type: ignore[arg-type]
    keyed = {"Idempotency-Key": "k1"}
    assert act("ORD-PAID0001", "refund", {}, **keyed)[0] == 503  # no Stripe key here
    status, said = act("ORD-PAID0001", "refund")
    assert status == 400 and "needs an Idempotency-Key" in said
    assert act("ORD-PAID0001", "refund", {"amount": None}, **keyed)[0] == 400
    assert act("ORD-PAID0001", "refund", {}, **{"Idempotency-Key": "not ok!"})[0] == 400
    assert turns.asked == []
    order = store.paid_orders.get("ORD-PAID0001")
    assert order is not None and order.fulfilment == Fulfilment.UNFULFILLED

    assert act("ORD-PAID0001", "deliver")[0] == 200
    assert act("ORD-PAID0001", "deliver")[0] == 200  # a repeat: the same turn again
    status, said = act("ORD-PAID0001", "ship", {"carrier": "DHL", "tracking_url": TRACKING})
    assert status == 409 and "delivered: it cannot be marked shipped" in said
    assert [intent for _, intent, _, _ in turns.asked] == ["EXTERNAL_order_delivered"] * 2
    assert turns.asked[0][3] == turns.asked[1][3]  # one outbox key: told once

    desk = OrdersDesk(store, object(), turns.trigger)  # type: ignore[arg-type]  # "a key"
    with pytest.raises(Exception, match="is a subscription") as refused:
        asyncio.run(desk.refund("ORD-SUBSCRIP", None, "k1"))
    assert getattr(refused.value, "status", None) == 409
    with pytest.raises(Exception, match="above 0"):
        asyncio.run(desk.refund("ORD-PAID0001", 0, "k1"))
    with pytest.raises(Exception, match="2580 of 2580 eur minor units left to refund, asked 9999"):
        asyncio.run(desk.refund("ORD-PAID0001", 9999, "k1"))
    with pytest.raises(Exception, match="needs an Idempotency-Key"):
        asyncio.run(desk.refund("ORD-PAID0001", 500, None))


def test_shipments_are_keyed_by_their_details_and_refunds_by_request(store: ConnectorStore) -> None:
    paid(store)
    turns = Turns()
    desk = OrdersDesk(store, None, turns.trigger)
    asyncio.run(desk.ship("ORD-PAID0001", "DHL", TRACKING))
    asyncio.run(desk.ship("ORD-PAID0001", " DHL ", TRACKING))  # the same, repeated
    asyncio.run(desk.ship("ORD-PAID0001", "DHL", TRACKING + "-fixed"))  # a correction
    asyncio.run(desk.ship("ORD-PAID0001", "DHL", TRACKING))  # corrected back: told again
    asyncio.run(desk.ship("ORD-PAID0001", "DHL", TRACKING))  # and that repeated: not
    origins = [origin for _, _, _, origin in turns.asked]
    assert origins[0] == origins[1] != origins[2]
    assert origins[3] not in origins[:3] and origins[4] == origins[3]
    assert CUSTOMER not in "".join(origins)
    assert turns.asked[0][1:3] == (
        ORDER_SHIPPED,
        {"order_id": "ORD-PAID0001", "carrier": "DHL", "tracking_url": TRACKING},
    )
    order = store.paid_orders.get("ORD-PAID0001")
    assert order is not None and outbox_origin(order, Fulfilment.SHIPPED) == origins[4]
    assert refund_key("ORD-PAID0001", "k1") == "orders-refund-ORD-PAID0001-key-k1"


def test_the_cli_needs_a_token_and_a_running_bot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("ORDERS_API_TOKEN", raising=False)
    assert orders_cli.main(["list"]) == 2
    assert "ORDERS_API_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("ORDERS_API_TOKEN", TOKEN)
    monkeypatch.setenv("ORDERS_API_URL", "http://127.0.0.1:9/webhooks/whatsapp/orders")
    assert (
        orders_cli.main(["deliver", "ORD-PAID0001"]) == orders_cli.UNCLEAR
    )  # it may have been done
    said = capsys.readouterr().err
    assert "cannot reach the bot at http://127.0.0.1:9" in said and TOKEN not in said
    with pytest.raises(SystemExit):
        orders_cli.main(["refund", "ORD-PAID0001", "--amount", "12.50"])
    assert "no decimal point" in capsys.readouterr().err
    monkeypatch.setenv("ORDERS_API_URL", "http://shop.example/webhooks/whatsapp/orders")
    assert orders_cli.main(["list"]) == 2  # the token would travel in clear
    assert "ORDERS_API_URL" in capsys.readouterr().err


def test_a_free_order_waits_to_ship_and_has_nothing_to_refund(store: ConnectorStore) -> None:
    """A 100 % promotion code: amount_total 0, no PaymentIntent, no subscription."""
    paid(store, "ORD-FREE0001", payment_intent=None, amount=0)
    assert [o.order_id for o in store.paid_orders.listing("paid")] == ["ORD-FREE0001"]
    assert store.paid_orders.listing("refunded") == []
    turns = Turns()
    desk = OrdersDesk(store, object(), turns.trigger)  # type: ignore[arg-type]
    shipped = asyncio.run(desk.ship("ORD-FREE0001", "DHL", TRACKING))
    assert (shipped["fulfilment"], shipped["subscription"]) == ("shipped", False)
    assert [intent for _, intent, _, _ in turns.asked] == [ORDER_SHIPPED]
    with pytest.raises(Exception, match="was free: nothing was charged") as refused:
        asyncio.run(desk.refund("ORD-FREE0001", None, "k1"))
    assert getattr(refused.value, "status", None) == 409
    assert orders_cli.state_of(shipped) == "shipped"


def test_a_paid_session_names_the_subscription_it_started() -> None:
    session = {"id": "cs_1", "object": "checkout.session", "payment_status": "paid",
               "mode": "subscription", "subscription": "sub_1", "payment_intent": None,
               "amount_total": 900, "currency": "eur",
               "metadata": {"whatsapp_user_id": CUSTOMER, "order_id": "ORD-SUBS0001"}}  # fmt: skip
    mapped = map_event({"id": "evt_1", "type": "checkout.session.completed",
                        "data": {"object": session}})  # fmt: skip
    assert isinstance(mapped, EventIntent) and mapped.entities["subscription_id"] == "sub_1"


def test_a_long_listing_says_there_are_more(
    store: ConnectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_module, "MAX_LISTED", 2)
    for n in range(3):
        paid(store, f"ORD-PAID000{n}")
    api = OrdersApi(TOKEN, OrdersDesk(store, None, Turns().trigger))
    status, listed = answer(asyncio.run(api.get(authorized())))
    assert status == 200 and listed["more"] is True
    assert [o["order_id"] for o in listed["orders"]] == ["ORD-PAID0000", "ORD-PAID0001"]
