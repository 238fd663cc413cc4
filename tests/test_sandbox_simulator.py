"""The chat simulator: its JSON API's answers to bad input, and the Flow client's round trip
with a Flow endpoint that decrypts and answers like ours (real RSA-OAEP and AES-GCM)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.edge.signatures import verify_hub_signature
from connectors.flows.crypto import decrypt_request, encrypt_response
from sandbox.flow_client import FlowClientError, FlowRun
from sandbox.graph_api import GraphApiEmulator, order_flow
from sandbox.loopback import LoopbackServer
from sandbox.simulator import ChatSimulator, cart_item

APP_SECRET = secrets.token_hex(16)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FlowEndpoint(LoopbackServer):
    """Checks the signature, decrypts, records the request and answers the queued reply."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, Any]]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify_hub_signature(raw, request.headers.get("X-Hub-Signature-256"), (APP_SECRET,)):
            return web.Response(status=432)
        decrypted = decrypt_request(json.loads(raw), KEY)
        self.requests.append(decrypted.payload)
        status, reply = self.replies.pop(0)
        return web.Response(
            status=status, text=encrypt_response(reply, decrypted.aes_key, decrypted.iv)
        )


@pytest.fixture
def endpoint() -> Iterator[FlowEndpoint]:
    server = FlowEndpoint()
    server.start()
    yield server
    server.stop()


CART = "espresso-beans:2"
CART_DATA = {
    "cart": CART,
    "cart_text": "2 × Espresso Beans — €25.80\nTotal so far: €25.80",
    "products": [{"id": "espresso-beans", "title": "Espresso Beans"}],
    "quantities": [{"id": "1", "title": "1"}, {"id": "2", "title": "2"}],
}


def flow_run(endpoint: FlowEndpoint) -> FlowRun:
    return FlowRun(
        flow=order_flow(),
        token="tok-1",
        screen="PRODUCT",
        data=dict(CART_DATA),
        endpoint=endpoint.origin,
        public_key=KEY.public_key(),
        app_secret=APP_SECRET,
    )


def test_a_screen_is_rendered_from_the_flow_json(endpoint: FlowEndpoint) -> None:
    screen = flow_run(endpoint).render()
    assert screen["title"] == "Your cart"
    kinds = [c["type"] for c in screen["components"]]
    assert kinds == ["text", "text", "text", "choice", "choice", "choice", "footer"]
    assert screen["components"][1]["text"].startswith("2 × Espresso Beans")  # ${data.cart_text}
    assert screen["components"][4]["options"][1] == {"id": "2", "title": "2"}
    assert [o["id"] for o in screen["components"][5]["options"]] == ["add", "checkout"]


def test_data_exchange_round_trip_and_close(endpoint: FlowEndpoint) -> None:
    run = flow_run(endpoint)
    with pytest.raises(FlowClientError, match="Then"):
        asyncio.run(run.submit({}))
    assert endpoint.requests == []  # like WhatsApp, nothing is sent with a required field empty
    delivery = {"cart": CART, "countries": [{"id": "DE", "title": "Germany"}]}
    endpoint.replies.append((200, {"screen": "DELIVERY", "data": delivery}))
    assert asyncio.run(run.submit({"then": "checkout"})) is None
    (request,) = endpoint.requests
    assert request == {
        "version": "3.0",
        "action": "data_exchange",
        "flow_token": "tok-1",
        "screen": "PRODUCT",
        # ${data.cart}; the optional fields left empty are sent empty
        "data": {"cart": CART, "product": "", "quantity": "", "then": "checkout"},
    }
    assert run.screen == "DELIVERY"
    params = {"flow_token": "tok-1", "cart": CART}
    endpoint.replies.append(
        (200, {"screen": "SUCCESS", "data": {"extension_message_response": {"params": params}}})
    )
    address = {"name": "A", "street": "B 1", "postal_code": "1000", "city": "C", "country": "DE"}
    assert asyncio.run(run.submit(address)) == params
    assert run.closed


def test_a_refused_token_closes_the_flow(endpoint: FlowEndpoint) -> None:
    run = flow_run(endpoint)
    endpoint.replies.append((427, {"error_msg": "expired"}))
    with pytest.raises(FlowClientError, match="427"):
        asyncio.run(run.submit({"then": "add"}))
    assert run.closed
    endpoint.replies.append((200, {"screen": "NOT_IN_THE_FLOW", "data": {}}))
    other = flow_run(endpoint)
    with pytest.raises(FlowClientError, match="NOT_IN_THE_FLOW"):
        asyncio.run(other.submit({"then": "add"}))


@pytest.fixture
def simulator() -> Iterator[ChatSimulator]:
    graph = GraphApiEmulator()
    graph.start()
    server = ChatSimulator(graph, APP_SECRET)
    server.start()
    yield server
    server.stop()
    graph.stop()


def test_the_page_and_its_api_answer_bad_input_with_4xx(simulator: ChatSimulator) -> None:
    page = simulator.origin
    assert "SANDBOX" in requests.get(page, timeout=5).text
    assert (
        requests.get(f"{page}/app.js", timeout=5)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    customer = requests.post(f"{page}/api/customers", json={"name": "Ann"}, timeout=5).json()
    assert customer["name"] == "Ann" and customer["wa_id"].isdigit()
    chats = requests.get(f"{page}/api/chats", timeout=5).json()
    assert chats == {"connected": False, "customers": [{**customer, "messages": []}]}
    base = f"{page}/api/customers/{customer['wa_id']}"
    for path, body, status in [
        ("/text", {"text": "hi"}, 503),  # no bot connected yet
        ("/text", {"text": ""}, 400),
        ("/text", {"text": "x" * 5000}, 400),
        ("/reply", {"message_id": "wamid.NONE", "reply_id": "/affirm"}, 404),
        ("/flows/wamid.NONE", {}, 404),
        ("/flows/wamid.NONE/submit", {"form": {}}, 404),
        ("/nowhere", {}, 404),
        ("/order", {"items": []}, 400),
        ("/order", {"items": [{"quantity": 1}]}, 400),
        ("/order", {"items": [{"retailer_id": "BL-ESP-250", "quantity": 0}]}, 400),
        ("/order", {"items": [{"retailer_id": "BL-ESP-250", "quantity": 1}]}, 503),  # no bot
    ]:
        answer = requests.post(base + path, json=body, timeout=5)
        assert answer.status_code == status, (path, answer.text)
        assert answer.json()["error"]
    assert requests.post(base + "/text", data=b"not json", timeout=5).status_code == 400
    assert (
        requests.post(f"{page}/api/customers/0000/text", json={"text": "hi"}, timeout=5).status_code
        == 404
    )
    assert requests.get(f"{page}/secrets", timeout=5).status_code == 404


def test_a_cart_item_is_priced_as_the_catalog_shows_unless_given() -> None:
    assert cart_item({"retailer_id": "BL-ESP-250", "quantity": 2}) == {
        "product_retailer_id": "BL-ESP-250",
        "quantity": 2,
        "item_price": 12.9,
        "currency": "EUR",
    }
    tampered = cart_item({"retailer_id": "BL-ESP-250", "quantity": 1, "item_price": 0.01})
    assert tampered["item_price"] == 0.01


def test_a_data_exchange_flow_opens_with_init(endpoint: FlowEndpoint) -> None:
    run = flow_run(endpoint)
    endpoint.replies.append((200, {"screen": "PRODUCT", "data": {"products": []}}))
    answer = asyncio.run(run.exchange("INIT", {}))
    assert answer["screen"] == "PRODUCT"
    assert endpoint.requests == [{"version": "3.0", "action": "INIT", "flow_token": "tok-1"}]


def test_an_answer_off_the_routing_model_or_with_other_data_is_refused(
    endpoint: FlowEndpoint,
) -> None:
    summary_data = dict.fromkeys(
        ("cart", "name", "street", "postal_code", "city", "country", "summary", "total_text"),
        "x",
    )
    endpoint.replies.append((200, {"screen": "SUMMARY", "data": summary_data}))
    assert asyncio.run(flow_run(endpoint).submit({"then": "checkout"})) is None  # PRODUCT→SUMMARY

    run = flow_run(endpoint)
    run.screen, run.data = "SUMMARY", dict(summary_data)
    endpoint.replies.append((200, {"screen": "PRODUCT", "data": CART_DATA}))
    with pytest.raises(FlowClientError, match="routes SUMMARY only to CONTINUE_IN_CHAT"):
        asyncio.run(run.submit({}))

    endpoint.replies.append((200, {"screen": "DELIVERY", "data": {"cart": CART}}))
    with pytest.raises(FlowClientError, match=r"missing: \['countries'\]"):
        asyncio.run(flow_run(endpoint).submit({"then": "checkout"}))

    endpoint.replies.append(
        (200, {"screen": "DELIVERY", "data": {"cart": CART, "countries": [], "extra": 1}})
    )
    with pytest.raises(FlowClientError, match=r"unknown: \['extra'\]"):
        asyncio.run(flow_run(endpoint).submit({"then": "checkout"}))

    stay = {**flow_run(endpoint).data, "error_message": "between 1 and 10"}
    endpoint.replies.append((200, {"screen": "PRODUCT", "data": stay}))  # same screen, snackbar
    assert asyncio.run(flow_run(endpoint).submit({"then": "add"})) is None
