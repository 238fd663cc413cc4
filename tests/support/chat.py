"""A WhatsApp customer's side of a conversation with the live bot, through the fakes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot

WAIT_SECONDS = 30.0
# The health route's counts of work the bot accepted and has not finished.
BACKLOG = ("in_flight", "pending_messages", "pending_stripe_events", "pending_notifications")
IDLE_SECONDS = 0.5  # how long the backlog stays empty before the bot counts as idle
POLL_SECONDS = 0.1


def backlog(rasa_url: str) -> int | None:
    """The work a Rasa server has accepted and not finished (its own turns in flight, and the
    shared database's pending messages, events and notifications); None when it is down."""
    try:
        answer = requests.get(f"{rasa_url}/webhooks/whatsapp/", timeout=5)
    except requests.ConnectionError:
        return None
    if not answer.ok:  # 503: its database is unreachable
        return None
    health = answer.json()
    return sum(int(health.get(name, 0)) for name in BACKLOG)


def text_of(message: dict[str, Any]) -> str:
    """What the customer reads in a message the bot sent."""
    if message["type"] == "text":
        return str(message["text"]["body"])
    if message["type"] == "interactive":
        return str(message["interactive"]["body"]["text"])
    return json.dumps(message)


@dataclass
class Chat:
    """Sends signed notifications as Meta does and reads what reached the fake Graph API."""

    bot: LiveBot
    graph: GraphApiEmulator
    app_secret: str
    replica: int = 0  # which of the bot's Rasa servers the notifications go to

    @property
    def webhook(self) -> str:
        return f"{self.bot.rasa_urls[self.replica]}/webhooks/whatsapp/webhook"

    def post(self, document: dict[str, Any]) -> requests.Response:
        body, headers = meta.signed(document, self.app_secret)
        return requests.post(self.webhook, data=body, headers=headers, timeout=10)

    def say(self, customer: str, text: str) -> str:
        """Sends `text` from `customer`; returns the id of the incoming message."""
        incoming = meta.text(customer, text)
        answer = self.post(meta.notification([incoming], [meta.contact(customer)]))
        assert answer.status_code == 200, answer.text
        return str(incoming["id"])

    def tap(self, customer: str, reply_id: str, title: str) -> None:
        reply = meta.button_reply(customer, reply_id, title)
        assert self.post(meta.notification([reply], [meta.contact(customer)])).status_code == 200

    def messages(self, customer: str) -> list[dict[str, Any]]:
        return [m for m in self.graph.messages() if customer in (m.get("to"), m.get("recipient"))]

    def wait(self, customer: str, count: int, settle: bool = False) -> list[dict[str, Any]]:
        """The messages sent to `customer`, once there are at least `count` — and with
        `settle`, once the bot is idle too, so that a late or duplicate message is among
        them."""
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.messages(customer)) < count:
            assert time.monotonic() < deadline, [text_of(m) for m in self.messages(customer)]
            time.sleep(POLL_SECONDS)
        if settle:
            self.idle()
        return self.messages(customer)

    def idle(self) -> None:
        """Returns once every running replica has finished all the work it accepted (the
        health route's backlog stays empty for IDLE_SECONDS): whatever the bot would still
        send because of what it was sent has been sent. A replica that is down is skipped."""
        deadline = time.monotonic() + WAIT_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < IDLE_SECONDS:
            counts = [backlog(url) for url in self.bot.rasa_urls]
            running = [count for count in counts if count is not None]
            assert running, "no replica answers its health route"
            if any(running):
                assert time.monotonic() < deadline, f"still busy after {WAIT_SECONDS} s: {counts}"
                quiet_since = time.monotonic()
            time.sleep(POLL_SECONDS)

    def next_reply(self, customer: str, sent_before: int) -> dict[str, Any]:
        return self.wait(customer, sent_before + 1)[sent_before]
