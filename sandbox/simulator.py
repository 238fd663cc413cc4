"""The chat simulator: a WhatsApp-like web page for test customers, and its JSON API.

The page (sandbox/static/) polls `GET /api/chats` for every customer's conversation: what
the customer sent, and what the bot sent as the Graph API emulator accepted it. Typing or
tapping posts to this server, which sends the notification to our webhook exactly as Meta
does (signed with the app secret). Opening the order Flow runs it as the WhatsApp client
does (sandbox/flow_client.py), with the public key registered on the Graph emulator.

JSON API (what the page and the end-to-end tests use):
  GET  /api/chats                          customers and their messages
  POST /api/customers        {name}        a new customer → {wa_id, name}
  POST /api/customers/{wa_id}/text    {text}
  POST /api/customers/{wa_id}/reply   {message_id, reply_id}   a button or list row
  POST /api/customers/{wa_id}/flows/{message_id}          open a Flow → its first screen
  POST /api/customers/{wa_id}/flows/{message_id}/submit   {form} → next screen or closed
  POST /api/customers/{wa_id}/order   {items: [{retailer_id, quantity, item_price?}],
                                       catalog_id?, text?}   the cart, sent as WhatsApp does
  GET/POST /api/staff…                     the staff panel of hand-overs (sandbox/shop_inbox.py)
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import meta
from sandbox.flow_client import FlowClientError, FlowRun
from sandbox.graph_api import GraphApiEmulator, SentMessage
from sandbox.loopback import LoopbackServer
from sandbox.shop_inbox import ShopInbox
from sandbox.webhooks import deliver
from shop_contract.catalog import default_catalog

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"/": "index.html", "/app.js": "app.js", "/app.css": "app.css"}
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
MAX_TEXT = 4096


@dataclass
class Customer:
    """A test customer: a WhatsApp user id (digits, like a phone number) and a name."""

    wa_id: str
    name: str
    sent: list[dict[str, Any]] = field(default_factory=list)  # what the customer sent
    flows: dict[str, FlowRun] = field(default_factory=dict)  # by the Flow message's id


class ApiError(Exception):
    """A 4xx answer with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ChatSimulator(LoopbackServer):
    """Serves the page and speaks for its customers to the bot's webhooks."""

    thread_name = "chat-simulator"

    def __init__(self, graph: GraphApiEmulator, app_secret: str, port: int = 0) -> None:
        super().__init__(port)
        self.graph = graph
        self.app_secret = app_secret
        self.bot_url: str | None = None  # the Rasa server, once connected
        self.customers: dict[str, Customer] = {}
        self._names = itertools.count(1)
        self.staff: ShopInbox | None = None  # the staff panel's server, when there is one

    @property
    def webhook(self) -> str:
        return f"{self._bot()}/webhooks/whatsapp/webhook"

    def _bot(self) -> str:
        if self.bot_url is None:
            raise ApiError(503, "the bot is not connected yet")
        return self.bot_url

    def add_customer(self, name: str = "") -> Customer:
        """A new customer with a fresh number (a fresh conversation with the bot)."""
        with self._lock:
            customer = Customer(
                "1555" + f"{secrets.randbelow(10**7):07d}",
                name.strip()[:40] or f"Customer {next(self._names)}",
            )
            self.customers[customer.wa_id] = customer
        return customer

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            if request.method == "GET" and request.path in STATIC_FILES:
                return _static(STATIC_FILES[request.path])
            if request.method == "GET" and request.path == "/api/chats":
                return web.json_response(self.chats())
            if request.path.startswith("/api/staff") and self.staff is not None:
                return await self.staff.page_api(request)
            if request.method == "POST" and request.path.startswith("/api/"):
                return web.json_response(await self._post(request))
            raise ApiError(404, f"no such page: {request.method} {request.path}")
        except ApiError as error:
            return web.json_response({"error": str(error)}, status=error.status)

    async def _post(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        parts = request.path.strip("/").split("/")[1:]
        if parts == ["customers"]:
            customer = self.add_customer(str(body.get("name", "")))
            return {"wa_id": customer.wa_id, "name": customer.name}
        if len(parts) < 3 or parts[0] != "customers":
            raise ApiError(404, f"no such endpoint: {request.path}")
        customer = self._customer(parts[1])
        if parts[2:] == ["text"]:
            return await self.say(customer, _string(body, "text", MAX_TEXT))
        if parts[2:] == ["reply"]:
            return await self.reply(
                customer, _string(body, "message_id", 100), _string(body, "reply_id", 256)
            )
        if parts[2:] == ["order"]:
            return await self.send_cart(customer, body)
        if len(parts) == 4 and parts[2] == "flows":
            return await self.open_flow(customer, parts[3])
        if len(parts) == 5 and parts[2] == "flows" and parts[4] == "submit":
            form = body.get("form", {})
            if not isinstance(form, dict):
                raise ApiError(400, "form must be an object of field values")
            return await self.submit_flow(customer, parts[3], {k: str(v) for k, v in form.items()})
        raise ApiError(404, f"no such endpoint: {request.path}")

    def _customer(self, wa_id: str) -> Customer:
        with self._lock:
            customer = self.customers.get(wa_id)
        if customer is None:
            raise ApiError(404, f"no customer {wa_id}")
        return customer

    def chats(self) -> dict[str, Any]:
        """Every customer's conversation, oldest message first."""
        accepted = self.graph.accepted()
        with self._lock:
            customers = list(self.customers.values())
        return {
            "connected": self.bot_url is not None,
            "customers": [
                {"wa_id": c.wa_id, "name": c.name, "messages": self._timeline(c, accepted)}
                for c in customers
            ],
        }

    def _timeline(self, customer: Customer, accepted: list[SentMessage]) -> list[dict[str, Any]]:
        statuses = self.graph.reported_statuses()
        bot = [
            {"id": m.id, "from": "bot", "at": m.at, "body": m.body, "status": statuses.get(m.id)}
            for m in accepted
            if m.recipient == customer.wa_id
        ]
        return sorted([*customer.sent, *bot], key=lambda m: float(m["at"]))

    async def _notify(
        self, customer: Customer, message: dict[str, Any], shown: str
    ) -> dict[str, Any]:
        """Sends the customer's message to the webhook as Meta does; records it as shown."""
        document = meta.notification([message], [meta.contact(customer.wa_id, name=customer.name)])
        delivery = await deliver(self.webhook, document, "meta", self.app_secret, "message")
        if not 200 <= delivery.status < 300:
            raise ApiError(502, f"the bot's webhook answered {delivery.status}")
        entry = {"id": message["id"], "from": "customer", "at": time.time(), "text": shown}
        with self._lock:
            customer.sent.append(entry)
        return entry

    async def say(self, customer: Customer, text: str) -> dict[str, Any]:
        return await self._notify(customer, meta.text(customer.wa_id, text), text)

    def _bot_message(self, customer: Customer, message_id: str) -> dict[str, Any]:
        for sent in self.graph.accepted():
            if sent.id == message_id and sent.recipient == customer.wa_id:
                return sent.body
        raise ApiError(404, f"no message {message_id} to this customer")

    async def reply(self, customer: Customer, message_id: str, reply_id: str) -> dict[str, Any]:
        """The customer taps a reply button or a list row of one of the bot's messages."""
        interactive = self._bot_message(customer, message_id).get("interactive", {})
        action = interactive.get("action", {})
        if interactive.get("type") == "button":
            titles = {b["reply"]["id"]: b["reply"]["title"] for b in action.get("buttons", [])}
            build: Callable[[str, str, str], dict[str, Any]] = meta.button_reply
        elif interactive.get("type") == "list":
            titles = {r["id"]: r["title"] for s in action.get("sections", []) for r in s["rows"]}
            build = meta.list_reply
        else:
            raise ApiError(400, f"message {message_id} has no buttons or list")
        if reply_id not in titles:
            raise ApiError(400, f"message {message_id} has no option {reply_id!r}")
        message = build(customer.wa_id, reply_id, titles[reply_id])
        message["context"] = {"from": meta.PHONE_NUMBER_ID, "id": message_id}
        return await self._notify(customer, message, titles[reply_id])

    async def send_cart(self, customer: Customer, body: dict[str, Any]) -> dict[str, Any]:
        """The customer sends their cart from the catalog: an `order` message whose prices
        are what the catalog shows (data/catalog.yml), unless the body gives others (a
        tampered client, for the tests)."""
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "items must be a list of {retailer_id, quantity}")
        cart = [cart_item(item) for item in items]
        catalog_id = str(body.get("catalog_id") or meta.CATALOG_ID)
        message = meta.order(customer.wa_id, cart, catalog_id, str(body.get("text") or ""))
        count = sum(int(i["quantity"]) for i in cart)
        return await self._notify(customer, message, f"🛒 Cart sent: {count} item(s)")

    async def open_flow(self, customer: Customer, message_id: str) -> dict[str, Any]:
        """The customer taps the Flow's button: its first screen (INIT for data_exchange)."""
        interactive = self._bot_message(customer, message_id).get("interactive", {})
        if interactive.get("type") != "flow":
            raise ApiError(400, f"message {message_id} is not a Flow message")
        parameters = interactive["action"]["parameters"]
        flow = self.graph.flows.get(parameters["flow_id"])
        if flow is None:
            raise ApiError(404, "the Flow of this message is not published")
        run = FlowRun(
            flow=flow,
            token=parameters["flow_token"],
            screen="",
            data={},
            endpoint=f"{self._bot()}/webhooks/whatsapp/flow",
            public_key=self._flow_public_key(),
            app_secret=self.app_secret,
        )
        try:
            if parameters.get("flow_action", "navigate") == "navigate":
                payload = parameters["flow_action_payload"]
                run.screen, run.data = payload["screen"], dict(payload.get("data", {}))
            else:
                answer = await run.exchange("INIT", {})
                run.screen, run.data = str(answer["screen"]), dict(answer.get("data", {}))
            run.check_data()
            rendered = run.render()
        except FlowClientError as error:
            raise ApiError(502, str(error)) from None
        with self._lock:
            customer.flows[message_id] = run
        return rendered

    async def submit_flow(
        self, customer: Customer, message_id: str, form: dict[str, str]
    ) -> dict[str, Any]:
        """The customer taps the footer; a closing Flow sends its nfm_reply to the webhook."""
        with self._lock:
            run = customer.flows.get(message_id)
        if run is None:
            raise ApiError(404, "open the Flow first")
        try:
            completion = await run.submit(form)
        except FlowClientError as error:
            return {**run.render(), "client_error": str(error)}
        if completion is not None:
            await self._notify(
                customer, meta.nfm_reply(customer.wa_id, completion), "Order form sent"
            )
        return run.render()

    def _flow_public_key(self) -> rsa.RSAPublicKey:
        """The key the business registered on the Graph API, as the WhatsApp client uses."""
        if not self.graph.public_key:
            raise ApiError(503, "no Flow public key is registered on the Graph API emulator")
        key = serialization.load_pem_public_key(self.graph.public_key.encode("utf-8"))
        if not isinstance(key, rsa.RSAPublicKey):
            raise ApiError(503, "the registered Flow key is not an RSA key")
        return key


def cart_item(raw: Any) -> dict[str, Any]:
    """One item of a cart the page or a test sends, priced as the catalog shows it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("retailer_id"), str):
        raise ApiError(400, "each item needs a retailer_id")
    quantity = raw.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ApiError(400, "quantity must be a whole number from 1")
    product = default_catalog().by_retailer_id(raw["retailer_id"])
    price = raw.get("item_price")
    if price is None:
        price = product.unit_amount / 100 if product else 0
    currency = str(raw.get("currency") or (product.currency if product else "eur")).upper()
    return meta.cart_item(raw["retailer_id"], quantity, price, currency)


def _string(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{name} is required")
    if len(value) > limit:
        raise ApiError(400, f"{name} is longer than {limit} characters")
    return value


def _static(name: str) -> web.Response:
    path = STATIC / name
    return web.Response(
        body=path.read_bytes(),
        content_type=CONTENT_TYPES[path.suffix],
        headers={"Cache-Control": "no-store"},
    )
