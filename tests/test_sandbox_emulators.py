"""The sandbox's emulators on loopback: Meta's and Stripe's answers to bad input, the signed
webhooks they deliver, the hosted Checkout page, and the settings the launcher hands the bot."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from aiohttp import web

from connectors.edge.signatures import verify_hub_signature
from sandbox import checkout_page, webhooks
from sandbox.graph_api import GraphApiEmulator, order_flow
from sandbox.loopback import LoopbackServer
from sandbox.settings import FLOW_ID, Ports, SandboxSecrets, bot_env
from sandbox.stripe_api import StripeEmulator
from scripts.settings_report import SETTINGS, configured_platforms

WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
APP_SECRET = secrets.token_hex(16)


class Receiver(LoopbackServer):
    """Our webhook's stand-in: records each POST's headers and raw body, answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.received.append((dict(request.headers), body))
        return web.json_response({"status": "ok"})

    def wait(self, count: int) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + 10
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def graph() -> Iterator[GraphApiEmulator]:
    server = GraphApiEmulator(flows={FLOW_ID: order_flow()})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stripe_emulator(receiver: Receiver) -> Iterator[StripeEmulator]:
    server = StripeEmulator("sk_test_" + secrets.token_hex(12))
    server.start()
    server.send_events_to(receiver.origin, WEBHOOK_SECRET)
    yield server
    server.stop()


def send(graph: GraphApiEmulator, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{graph.base_url}/{graph.phone_number_id}/messages",
        json={"messaging_product": "whatsapp", "to": "15550001111", **body},
        headers={"Authorization": f"Bearer {graph.access_token}"},
        timeout=5,
    )


def flow_message(screen: str, data: dict[str, Any], flow_cta: str = "Order now") -> dict[str, Any]:
    parameters = {
        "flow_message_version": "3",
        "flow_token": "token",
        "flow_id": FLOW_ID,
        "flow_cta": flow_cta,
        "flow_action": "navigate",
        "flow_action_payload": {"screen": screen, "data": data},
    }
    return {
        "type": "interactive",
        "interactive": {
            "type": "flow",
            "body": {"text": "Order"},
            "action": {"name": "flow", "parameters": parameters},
        },
    }


def buttons(*titles: str) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Choose"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"/{n}", "title": t}}
                    for n, t in enumerate(titles)
                ]
            },
        },
    }


def cta(url: str) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": "Pay"},
            "action": {"name": "cta_url", "parameters": {"display_text": "Pay now", "url": url}},
        },
    }


def template(name: str, *texts: str) -> dict[str, Any]:
    parameters = [{"type": "text", "text": t} for t in texts]
    return {
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": parameters}],
        },
    }


PRODUCTS = {
    "cart": "",
    "cart_text": "Your cart is empty.",
    "products": [{"id": "espresso-beans", "title": "Espresso Beans"}],
    "quantities": [{"id": "1", "title": "1"}],
}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"type": "text", "text": {"body": "x" * 4097}}, "text.body is longer than 4096"),
        ({"type": "text", "text": {"body": ""}}, "text.body is required"),
        (buttons("a", "b", "c", "d"), "1 to 3 buttons"),
        (buttons("a title that is far too long"), "title is longer than 20"),
        (cta("wa.me/no-scheme"), "parameters.url is not a URL"),
        (flow_message("NOWHERE", {}), "not a screen of the Flow"),
        (flow_message("PRODUCT", {}), "must match screen PRODUCT"),
        (flow_message("PRODUCT", PRODUCTS, "x" * 21), "flow_cta is longer than 20"),
        ({"type": "image", "image": {"link": "javascript:alert(1)"}}, "image.link is not a URL"),
        ({"type": "image", "image": {"link": "https:///photo.jpg"}}, "image.link is not a URL"),
        (template("order_update", "two\nlines"), "no new lines"),
        ({"type": "sticker", "sticker": {}}, "not supported"),
    ],
)
def test_graph_refuses_what_meta_refuses(
    graph: GraphApiEmulator, body: dict[str, Any], detail: str
) -> None:
    answer = send(graph, body)
    assert answer.status_code == 400
    assert detail in answer.json()["error"]["message"]
    assert graph.accepted() == []


def test_graph_takes_the_longest_flow_cta_and_a_web_image_link(graph: GraphApiEmulator) -> None:
    assert send(graph, flow_message("PRODUCT", PRODUCTS, "x" * 20)).status_code == 200
    image = {"type": "image", "image": {"link": "https://shop.example/beans.jpg"}}
    assert send(graph, image).status_code == 200


def test_graph_sends_only_approved_templates_with_their_variables() -> None:
    graph = GraphApiEmulator(templates={"order_update": 1})
    graph.start()
    try:
        assert send(graph, template("order_update", "Order ORD-1 is confirmed")).status_code == 200
        unknown = send(graph, template("promo", "x"))
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == 132001
        extra = send(graph, template("order_update", "a", "b"))
        assert extra.status_code == 400 and extra.json()["error"]["code"] == 132000
        assert len(graph.accepted()) == 1
    finally:
        graph.stop()


def test_graph_accepts_and_reports_statuses_signed(
    graph: GraphApiEmulator, receiver: Receiver
) -> None:
    graph.deliver_statuses_to(receiver.origin, APP_SECRET)
    for body in (
        buttons("Yes", "No"),
        cta("http://127.0.0.1/pay"),
        flow_message("PRODUCT", PRODUCTS),
    ):
        assert send(graph, body).status_code == 200
    ids = [m.id for m in graph.accepted()]
    assert len(set(ids)) == 3
    received = receiver.wait(9)
    states: dict[str, list[str]] = {}
    for headers, raw in received:
        assert verify_hub_signature(raw, headers.get("X-Hub-Signature-256"), (APP_SECRET,))
        (status,) = json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"]
        states.setdefault(status["id"], []).append(status["status"])
    assert states == {i: ["sent", "delivered", "read"] for i in ids}


def create_session(emulator: StripeEmulator, **extra: str) -> dict[str, Any]:
    params = {
        "mode": "payment",
        "line_items[0][price]": next(iter(emulator.prices)),
        "line_items[0][quantity]": "2",
        "success_url": "http://localhost/done",
        "metadata[order_id]": "ORD-1",
        "metadata[whatsapp_user_id]": "15550001111",
        "payment_intent_data[metadata][order_id]": "ORD-1",
        "payment_intent_data[metadata][whatsapp_user_id]": "15550001111",
        **extra,
    }
    answer = requests.post(
        f"{emulator.base_url}/v1/checkout/sessions",
        data=params,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=5,
    )
    result: dict[str, Any] = answer.json()
    return result


def events(receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """The events received, each checked with stripe-python's own signature verification."""
    return [
        stripe.Webhook.construct_event(raw, headers["Stripe-Signature"], WEBHOOK_SECRET).to_dict()
        for headers, raw in receiver.wait(count)
    ]


def test_stripe_knows_the_parameters_stripe_python_declares(
    stripe_emulator: StripeEmulator,
) -> None:
    assert "id" in create_session(stripe_emulator, ui_mode="hosted_page", locale="fr")
    refused = create_session(stripe_emulator, payment_method_collection_typo="x")
    assert refused["error"]["param"] == "payment_method_collection_typo"
    assert (
        refused["error"]["message"] == "Received unknown parameter: payment_method_collection_typo"
    )
    bad_item = create_session(stripe_emulator, **{"line_items[0][colour]": "red"})
    assert bad_item["error"]["param"] == "line_items[0][colour]"


@pytest.mark.parametrize("param", ["success_url", "cancel_url"])
@pytest.mark.parametrize("url", ["javascript:alert(1)", "/done", "http://", "ftp://shop.example/"])
def test_stripe_refuses_return_urls_that_are_not_web_addresses(
    stripe_emulator: StripeEmulator, param: str, url: str
) -> None:
    refused = create_session(stripe_emulator, **{param: url})
    assert refused["error"] == {
        "type": "invalid_request_error",
        "message": "Not a valid URL",
        "code": "url_invalid",
        "param": param,
    }
    assert stripe_emulator.sessions == {}


def test_the_checkout_page_links_back_to_web_addresses_only(
    stripe_emulator: StripeEmulator,
) -> None:
    session = create_session(stripe_emulator, cancel_url="https://shop.example/cancelled")
    assert session["cancel_url"] == "https://shop.example/cancelled"
    done = {**session, "status": "complete", "payment_status": "paid"}
    assert 'href="http://localhost/done"' in checkout_page.render(done, [])
    forged = {**done, "success_url": "javascript:alert(1)"}
    assert 'id="back"' not in checkout_page.render(forged, [])


def test_a_failed_webhook_is_not_waited_for_after_its_last_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(webhooks, "RETRY_DELAY_SECONDS", 0.4)
    started = time.monotonic()
    delivery = asyncio.run(
        webhooks.deliver(f"http://127.0.0.1:{port}/", {}, "meta", APP_SECRET, "status sent")
    )
    elapsed = time.monotonic() - started
    assert delivery.status == 0
    # Waits 0.4 s after the first attempt and 0.8 s after the second; 1.2 s more after the
    # third would only delay the report of the failure.
    assert 1.2 <= elapsed < 2.0, elapsed


def test_stripe_lists_and_expires_sessions_with_the_event(
    stripe_emulator: StripeEmulator, receiver: Receiver
) -> None:
    client = stripe.StripeClient(
        stripe_emulator.api_key, base_addresses={"api": stripe_emulator.base_url}
    )
    first, second = create_session(stripe_emulator), create_session(stripe_emulator)
    listed = client.v1.checkout.sessions.list(params={"limit": 1})
    assert [s.id for s in listed.data] == [second["id"]] and listed.has_more
    expired = client.v1.checkout.sessions.expire(first["id"])
    assert expired.status == "expired"
    assert [s.id for s in client.v1.checkout.sessions.list(params={"status": "open"}).data] == [
        second["id"]
    ]
    (event,) = events(receiver, 1)
    assert (
        event["type"] == "checkout.session.expired" and event["data"]["object"]["id"] == first["id"]
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(first["id"])


def test_the_checkout_page_pays_declines_and_sends_duplicates(
    stripe_emulator: StripeEmulator, receiver: Receiver
) -> None:
    session = create_session(stripe_emulator)
    page = requests.get(session["url"], timeout=5).text
    assert "SANDBOX" in page and 'value="pay"' in page and "€" in page
    declined = requests.post(session["url"], data={"outcome": "decline"}, timeout=5).text
    assert "declined" in declined and 'id="status">open' in declined
    (failed,) = events(receiver, 1)
    assert failed["type"] == "payment_intent.payment_failed"
    assert failed["data"]["object"]["metadata"]["order_id"] == "ORD-1"
    paid = requests.post(session["url"], data={"outcome": "pay", "duplicate": "1"}, timeout=5).text
    assert 'id="status">complete' in paid and 'id="back"' in paid
    delivered = events(receiver, 5)[1:]
    assert [e["type"] for e in delivered] == [
        "payment_intent.succeeded",
        "checkout.session.completed",
    ] * 2
    assert delivered[1]["id"] == delivered[3]["id"]  # the same event, delivered twice
    assert delivered[1]["data"]["object"]["payment_status"] == "paid"
    again = requests.post(session["url"], data={"outcome": "pay"}, timeout=5).text
    assert "This Checkout Session is complete." in again
    assert requests.post(session["url"], data={"outcome": "steal"}, timeout=5).status_code == 400
    missing = session["url"].rsplit("/", 1)[0] + "/cs_test_00"
    assert requests.get(missing, timeout=5).status_code == 404


def test_launcher_settings_cover_every_platform_setting() -> None:
    keys = SandboxSecrets.generate()
    env = bot_env(
        keys,
        "http://127.0.0.1:1/v23.0",
        "http://127.0.0.1:2",
        "http://localhost:3/",
        "http://127.0.0.1:4/handover",
    )
    platform = {s.name for s in SETTINGS if s.feature.startswith(("WhatsApp", "Stripe"))}
    assert platform <= set(env)  # a developer's .env cannot add a real key to the sandbox
    assert env["STRIPE_SECRET_KEY"].startswith("sk_test_") and env[
        "STRIPE_WEBHOOK_SECRET"
    ].startswith("whsec_")
    assert "BEGIN PRIVATE KEY" in env["WHATSAPP_FLOW_PRIVATE_KEY"]
    assert (
        bot_env(SandboxSecrets.generate(), "a", "b", "c", "d")["WHATSAPP_APP_SECRET"]
        != env["WHATSAPP_APP_SECRET"]
    )
    assert configured_platforms({}) == "none"
    assert configured_platforms({"STRIPE_SECRET_KEY": "sk_test_x"}) == "partial"
    assert configured_platforms(env) == "all"


def test_ports_default_and_override() -> None:
    assert Ports.from_env({}) == Ports(5080, 5081, 5082)
    assert Ports.from_env({"SANDBOX_PAGE_PORT": "6080"}).page == 6080
    with pytest.raises(ValueError, match="SANDBOX_GRAPH_PORT"):
        Ports.from_env({"SANDBOX_GRAPH_PORT": "http"})


def test_the_product_never_imports_the_sandbox() -> None:
    root = Path(__file__).resolve().parent.parent
    for folder in ("actions", "connectors", "scripts"):
        for source in (root / folder).glob("*.py"):
            text = source.read_text(encoding="utf-8")
            assert not re.search(r"^\s*(from|import) sandbox\b", text, re.MULTILINE), source
