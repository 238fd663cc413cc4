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


def emulated_platforms(
    graph_api: GraphApiEmulator, stripe_api: StripeEmulator, app_secret: str, webhook_secrets: str
) -> dict[str, str]:
    """The settings that point a live bot at the Graph API and Stripe emulators, with the
    Utility template for what goes out outside the 24-hour window."""
    return {
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": app_secret,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
        "WHATSAPP_NOTIFICATION_TEMPLATE": "order_update",
        "STRIPE_SECRET_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.base_url,
        "STRIPE_WEBHOOK_SECRET": webhook_secrets,
    }


def order_and_get_link(
    chat: Chat, stripe_api: StripeEmulator, customer: str, sent_before: int = 0
) -> dict[str, Any]:
    """The customer, who has had `sent_before` messages from the bot, orders decaf by text
    and taps 'pay'; the Checkout Session created."""
    chat.say(customer, "I'd like to order decaf")
    summary = chat.next_reply(customer, sent_before)
    assert "Shall I send you the payment link?" in text_of(summary), text_of(summary)
    chat.tap(customer, "/affirm", "Yes, pay now")
    url = chat.next_reply(customer, sent_before + 1)["interactive"]["action"]["parameters"]["url"]
    (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
    return session
