"""The orders API, under /webhooks/whatsapp/orders/:

    GET  /orders?status=paid          paid orders waiting to ship (also shipped, delivered,
                                      refunded, all; unconfirmed: paid at Stripe, never
                                      confirmed by the bot, which nothing here acts on)
    POST /orders/<order_id>/ship      {"carrier": "DHL", "tracking_url": "https://…"}
    POST /orders/<order_id>/deliver   {}
    POST /orders/<order_id>/refund    {} for all that is left, or {"amount": 500} in minor
                                      units (500 = 5.00), with an Idempotency-Key header
                                      (required, 400 without): the same key is the same
                                      refund, with the amount it first resolved to;
                                      "repeated": true when it was one already

Off (404 for every path) while ORDERS_API_TOKEN is unset; otherwise every request needs
`Authorization: Bearer <token>`, compared in constant time (401 without it or with a wrong
one). Errors are JSON {"error": "…"}: 400 bad input, 404 unknown order, 409 a move not
allowed, nothing left to refund or an Idempotency-Key reused for another request, 502 when
Stripe fails, 503 when refunds are off.
"""

from __future__ import annotations

import re
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.edge.json_body import parse_json
from connectors.edge.limits import read_body_within
from connectors.orders.desk import MISSING_KEY, OrderRequestError, OrdersDesk, Recheck, Trigger
from connectors.orders.refunds import Refunds
from connectors.settings import OrdersSettings
from connectors.storage.store import ConnectorStore
from shop_contract.bearer import bearer_refusal

MAX_BODY_BYTES = 16 * 1024
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ACTIONS = ("ship", "deliver", "refund")


def body_of(request: Request) -> dict[str, Any]:
    raw = request.body or b""
    if not raw.strip():
        return {}
    try:
        document = parse_json(raw)
    except ValueError:
        raise OrderRequestError("the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise OrderRequestError("the body must be a JSON object")
    return document


class OrdersApi:
    """Answers the orders routes; the channel's blueprint maps them here."""

    def __init__(self, token: str | None, desk: OrdersDesk) -> None:
        self.token = token
        self.desk = desk

    def refusal(self, request: Request) -> HTTPResponse | None:
        """The answer to a request the API must not serve (off, or not authenticated)."""
        if self.token is None:
            return response.json({"error": "not found"}, status=404)
        if bearer_refusal(request.headers.get("Authorization"), self.token) is not None:
            return response.json(
                {"error": "missing or wrong bearer token (ORDERS_API_TOKEN)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="orders"'},
            )
        return None

    async def get(self, request: Request) -> HTTPResponse:
        """GET /orders, once authenticated."""
        return self.refusal(request) or await self.listing(request)

    async def post(self, request: Request, order_id: str, action: str) -> HTTPResponse:
        """POST /orders/<order_id>/<action> (a streamed body), once authenticated."""
        if refusal := self.refusal(request):
            return refusal
        if action not in ACTIONS:
            return response.json({"error": "not found"}, status=404)
        if not await read_body_within(request, MAX_BODY_BYTES):
            return response.json({"error": "body too large"}, status=413)
        return await self.act(request, order_id, action)

    async def listing(self, request: Request) -> HTTPResponse:
        try:
            orders, more = await self.desk.listing(request.args.get("status", "paid"))
        except OrderRequestError as error:
            return refused(error)
        return response.json({"orders": orders, "more": more})

    async def act(self, request: Request, order_id: str, action: str) -> HTTPResponse:
        try:
            if not ORDER_ID.fullmatch(order_id):
                raise OrderRequestError("the order id has 1 to 64 letters, digits, '-' or '_'")
            body = body_of(request)
            if action == "ship":
                answer = await self.desk.ship(
                    order_id, body.get("carrier"), body.get("tracking_url")
                )
            elif action == "deliver":
                answer = await self.desk.deliver(order_id)
            else:
                key = request.headers.get("Idempotency-Key")
                if key is None:
                    raise OrderRequestError(MISSING_KEY)
                if not IDEMPOTENCY_KEY.fullmatch(key):
                    raise OrderRequestError("Idempotency-Key: 1 to 64 letters, digits, '-' or '_'")
                if "amount" in body and body["amount"] is None:  # not "all": a mistake
                    raise OrderRequestError("amount: leave it out to refund all that is left")
                answer = await self.desk.refund(order_id, body.get("amount"), key)
        except OrderRequestError as error:
            return refused(error)
        return response.json(answer)


def refused(error: OrderRequestError) -> HTTPResponse:
    return response.json({"error": str(error)}, status=error.status)


def orders_api(
    settings: OrdersSettings,
    store: ConnectorStore,
    trigger: Trigger,
    recheck: Recheck | None = None,
) -> OrdersApi:
    """The orders API as the settings make it: off without a token, no refunds without a
    Stripe key."""
    refunds = (
        Refunds(settings.stripe_secret_key, settings.stripe_api_base)
        if settings.stripe_secret_key
        else None
    )
    return OrdersApi(settings.token, OrdersDesk(store, refunds, trigger, recheck))
