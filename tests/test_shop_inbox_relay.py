"""The sandbox staff panel's relay to the orders API waits longer than the bot takes for a
shipment's turn, and a bot that does not answer in time, or answers with something that is
not JSON, is a JSON error the panel can show (never an exception the page never hears of)."""

from __future__ import annotations

import asyncio
import http.server
import time
from collections.abc import Iterator

import pytest

from connectors.orders.turns import TOLD_WITHIN_SECONDS
from sandbox import shop_inbox
from sandbox.shop_inbox import ShopInbox
from tests.test_orders_cli import Loopback, json_answer


@pytest.fixture
def inbox() -> Iterator[ShopInbox]:
    yield ShopInbox("whsec_relay", "o" * 32, "t" * 32)


def slow(handler: http.server.BaseHTTPRequestHandler) -> None:
    time.sleep(1.0)
    json_answer(200, {"told": True})(handler)


def garbage(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()
    handler.wfile.write(b"<html>bad gateway</html>")


def test_a_shipment_waits_longer_than_the_customers_turn() -> None:
    assert shop_inbox.TURN_SECONDS > TOLD_WITHIN_SECONDS


def test_no_answer_in_time_and_a_garbage_answer_are_json_errors(inbox: ShopInbox) -> None:
    for answer, status in ((slow, 504), (garbage, 502)):
        bot = Loopback(answer)
        try:
            inbox.bot_url = bot.url
            got = asyncio.run(
                inbox.call("POST", "/webhooks/whatsapp/orders/ORD-1/ship", {}, "t", seconds=0.3)
            )
        finally:
            bot.close()
        assert got[0] == status and isinstance(got[1].get("error"), str)
    inbox.bot_url = None
    assert asyncio.run(inbox.call("GET", "/x", None, "t"))[0] == 503
