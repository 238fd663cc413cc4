"""A WhatsApp customer's side of a conversation with the live bot, through the fakes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from sandbox import meta
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot
from sandbox.stripe_api import StripeEmulator
from tests.support.idle import POLL_SECONDS, wait_until_idle
from tests.support.idle import WAIT_SECONDS as WAIT_SECONDS  # the tests' patience, here too


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
        """Returns once every running replica has finished all the work it accepted
        (tests/support/idle.py): whatever the bot would still send has been sent."""
        wait_until_idle(self.bot.rasa_urls)

    def next_reply(self, customer: str, sent_before: int) -> dict[str, Any]:
        return self.wait(customer, sent_before + 1)[sent_before]

    def pay(
        self, customer: str, link: dict[str, Any], stripe: StripeEmulator, webhook_secret: str
    ) -> dict[str, Any]:
        """The customer pays the payment `link` on the Stripe emulator, and Stripe's signed
        checkout.session.completed reaches the bot; returns the Checkout Session."""
        url = link["interactive"]["action"]["parameters"]["url"]
        (session,) = [s for s in stripe.sessions.values() if s["url"] == url]
        stripe.complete(session["id"])
        order_id = session["metadata"]["order_id"]
        paid = se.session(session["id"], customer, order_id, session["amount_total"])
        body, headers = se.signed(se.event("checkout.session.completed", paid), webhook_secret)
        stripe_url = f"{self.bot.rasa_url}/webhooks/whatsapp/stripe"
        assert requests.post(stripe_url, data=body, headers=headers, timeout=10).ok
        return session
