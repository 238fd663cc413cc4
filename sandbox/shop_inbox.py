"""The shop's side of a hand-over to a person, in the sandbox: a loopback receiver of the bot's
signed hand-over webhook (HANDOVER_WEBHOOK_URL), and the staff panel's way to the bot's
operator API and orders API.

The receiver checks each event as a shop's receiver should: the `X-Handover-Signature`
(HMAC-SHA256 of "<t>.<raw body>" with the shared secret, constant-time), a timestamp within
five minutes, and the event id, so a re-delivery is acknowledged but kept once. The chat
page (sandbox/static/) reads what arrived and answers through this server, which calls the
operator and orders APIs with the sandbox's throw-away tokens: the page never holds them.

Page API (served by the chat simulator under /api/staff):
  GET  /api/staff                    the hand-over events received, oldest first
  POST /api/staff/{ref}/reply {text} a staff reply to the customer (the operator API's)
  POST /api/staff/{ref}/resume       the bot answers the customer again
  GET  /api/staff/orders             every paid order (the orders API's `status=all`)
  POST /api/staff/orders/{id}/{ship|deliver|refund}  relayed to the orders API, a refund
                                     under a new Idempotency-Key per click

Every POST needs the page's `X-Staff-Panel: 1` header: a form or a no-cors fetch from another
site cannot set it (cross-site request forgery), and a CORS request asking to is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from connectors.edge.signatures import verify_stripe_signature
from connectors.orders.refunds import REFUND_WORST_CASE_SECONDS
from sandbox.loopback import LoopbackServer

PATH = "/handover"
SIGNATURE_HEADER = "X-Handover-Signature"
OPERATOR_PATH = "/webhooks/whatsapp/operator/handovers"
ORDERS_PATH = "/webhooks/whatsapp/orders"
ORDER_ACTIONS = ("ship", "deliver", "refund")
PANEL_HEADER = "X-Staff-Panel"
TIMEOUT_SECONDS = 10.0
# A shipment or delivery waits up to connectors/orders/turns.py TOLD_WITHIN_SECONDS (10 s) for
# the customer's turn; a refund for Stripe and its retries: the relay must not give up first.
TURN_SECONDS = 20.0
REFUND_SECONDS = REFUND_WORST_CASE_SECONDS + 15.0


class ShopInbox(LoopbackServer):
    """Receives and keeps the hand-over events; relays the staff panel to the operator API."""

    thread_name = "shop-inbox"

    def __init__(
        self, secret: str, operator_token: str, orders_token: str = "", port: int = 0
    ) -> None:
        super().__init__(port)
        self.secret = secret
        self.operator_token = operator_token
        self.orders_token = orders_token
        self.bot_url: str | None = None  # the Rasa server, once connected
        self.events: list[dict[str, Any]] = []
        self.deliveries: Counter[str] = Counter()  # accepted POSTs per event id
        self.refused = 0  # POSTs whose signature or timestamp did not hold

    @property
    def url(self) -> str:
        """Where the bot posts its events (HANDOVER_WEBHOOK_URL)."""
        return f"{self.origin}{PATH}"

    def received(self, kind: str | None = None, ref: str | None = None) -> list[dict[str, Any]]:
        """The events kept (each id once), of one type and hand-over if given."""
        with self._lock:
            events = list(self.events)
        return [
            event
            for event in events
            if kind in (None, event["type"]) and ref in (None, event["handover"]["ref"])
        ]

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method != "POST" or request.path != PATH:
            return web.json_response({"error": "not found"}, status=404)
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER)
        if not verify_stripe_signature(body, header, (self.secret,), time.time()):
            with self._lock:
                self.refused += 1
            return web.json_response({"error": "bad or stale signature"}, status=400)
        event = json.loads(body)
        with self._lock:
            self.deliveries[event["id"]] += 1
            if self.deliveries[event["id"]] == 1:
                self.events.append(event)
        return web.json_response({"received": event["id"]})

    async def page_api(self, request: web.Request) -> web.Response:
        """The staff panel's calls (see the module's docstring)."""
        parts = request.path.strip("/").split("/")[2:]
        if request.method == "POST" and request.headers.get(PANEL_HEADER) != "1":
            return web.json_response({"error": f"missing {PANEL_HEADER} header"}, status=403)
        if request.method == "GET" and not parts:
            return web.json_response({"events": self.received(), "connected": bool(self.bot_url)})
        if parts[:1] == ["orders"]:
            return await self.orders(request, parts[1:])
        if request.method == "POST" and len(parts) == 2 and parts[1] in ("reply", "resume"):
            try:
                body: Any = await request.json() if parts[1] == "reply" else None
            except ValueError:
                return web.json_response({"error": "the body must be JSON"}, status=400)
            status, answer = await self.operator(parts[0], parts[1], body)
            return web.json_response(answer, status=status)
        return web.json_response({"error": f"no such endpoint: {request.path}"}, status=404)

    async def orders(self, request: web.Request, parts: list[str]) -> web.Response:
        """The staff panel's orders: the list, or one action on an order, relayed."""
        if request.method == "GET" and not parts:
            status, answer = await self.call(
                "GET", f"{ORDERS_PATH}?status=all", None, self.orders_token
            )
        elif request.method == "POST" and len(parts) == 2 and parts[1] in ORDER_ACTIONS:
            try:
                body = await request.json() if await request.read() else {}
            except ValueError:
                return web.json_response({"error": "the body must be JSON"}, status=400)
            path = f"{ORDERS_PATH}/{parts[0]}/{parts[1]}"
            key = str(uuid.uuid4()) if parts[1] == "refund" else None
            seconds = REFUND_SECONDS if key is not None else TURN_SECONDS
            status, answer = await self.call("POST", path, body, self.orders_token, key, seconds)
        else:
            return web.json_response({"error": f"no such endpoint: {request.path}"}, status=404)
        return web.json_response(answer, status=status)

    async def operator(self, ref: str, action: str, body: Any) -> tuple[int, dict[str, Any]]:
        """One call to the bot's operator API: (its status, its JSON answer)."""
        return await self.call("POST", f"{OPERATOR_PATH}/{ref}/{action}", body, self.operator_token)

    async def call(
        self,
        method: str,
        path: str,
        body: Any,
        token: str,
        key: str | None = None,
        seconds: float = TIMEOUT_SECONDS,
    ) -> tuple[int, dict[str, Any]]:
        """One call to the bot (with `key` as its Idempotency-Key), waiting `seconds`: (its
        status, its JSON answer); no answer in time or not JSON is a JSON error (504, 502)."""
        if self.bot_url is None:
            return 503, {"error": "the bot is not connected yet"}
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        timeout = aiohttp.ClientTimeout(total=seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    method, f"{self.bot_url}{path}", json=body, headers=headers
                ) as answer,
            ):
                return answer.status, dict(await answer.json())
        except asyncio.TimeoutError:
            return 504, {"error": f"the bot did not answer within {seconds:.0f} s: look again"}
        except (aiohttp.ClientError, ValueError, TypeError) as failed:
            return 502, {"error": f"no answer from the bot ({type(failed).__name__})"}
