"""The sandbox for tests (emulators + the real bot, one per test session), and a test
customer driving it through its HTTP API: the chat simulator's JSON API (what the page
uses) and the emulated Stripe Checkout page (what the browser posts)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sandbox.emulators import Emulators
from sandbox.launcher import LiveBot, start_bot
from sandbox.settings import Ports, SandboxSecrets
from tests.support.idle import POLL_SECONDS, WAIT_SECONDS, wait_until_idle


def shown(message: dict[str, Any]) -> str:
    """What the customer reads in a bot message: its text, or a template's parameters."""
    body = message["body"]
    if body["type"] == "text":
        return str(body["text"]["body"])
    if body["type"] == "interactive":
        return str(body["interactive"].get("body", {}).get("text", ""))
    if body["type"] == "template":
        parameters = [p for c in body["template"].get("components", []) for p in c["parameters"]]
        return " ".join(str(p["text"]) for p in parameters)
    return json.dumps(body)


def kind(message: dict[str, Any]) -> str:
    """text, template, or interactive:button|list|cta_url|flow|product_list|product."""
    body = message["body"]
    if body["type"] == "interactive":
        return f"interactive:{body['interactive']['type']}"
    return str(body["type"])


@dataclass
class Customer:
    """One simulated WhatsApp customer of the sandbox at `page` (the simulator's URL);
    `idle` waits until the sandbox has finished its work (for `wait(..., settle=True)`)."""

    page: str
    wa_id: str
    idle: Callable[[], None] | None = None

    @classmethod
    def add(cls, page: str, name: str, idle: Callable[[], None] | None = None) -> Customer:
        answer = requests.post(f"{page}/api/customers", json={"name": name}, timeout=10)
        answer.raise_for_status()
        return cls(page, str(answer.json()["wa_id"]), idle)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(
            f"{self.page}/api/customers/{self.wa_id}/{path}", json=body, timeout=30
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def messages(self) -> list[dict[str, Any]]:
        chats = requests.get(f"{self.page}/api/chats", timeout=10).json()["customers"]
        (mine,) = [c for c in chats if c["wa_id"] == self.wa_id]
        return list(mine["messages"])

    def bot_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["from"] == "bot"]

    def say(self, text: str) -> None:
        self._post("text", {"text": text})

    def send_cart(self, items: list[dict[str, Any]], **extra: Any) -> None:
        """Sends a cart from the catalog ({retailer_id, quantity[, item_price]} each) as
        WhatsApp's `order` message; `extra` may name another catalog_id."""
        self._post("order", {"items": items, **extra})

    def wait(self, count: int, settle: bool = False) -> list[dict[str, Any]]:
        """The bot's messages, once there are at least `count` — and with `settle`, once the
        sandbox is idle too, so that a late or duplicate message is among them."""
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.bot_messages()) < count:
            assert time.monotonic() < deadline, [shown(m) for m in self.bot_messages()]
            time.sleep(POLL_SECONDS)
        if settle:
            assert self.idle is not None, "a customer of Sandbox.customer() can settle"
            self.idle()
        return self.bot_messages()

    def next(self, before: int) -> dict[str, Any]:
        """The bot's next message after the first `before` ones."""
        return self.wait(before + 1)[before]

    def tap(self, message: dict[str, Any], title: str) -> None:
        """Taps the reply button or list row titled `title` of `message`."""
        interactive = message["body"]["interactive"]
        options = [
            (b["reply"]["id"], b["reply"]["title"])
            for b in interactive["action"].get("buttons", [])
        ] + [
            (r["id"], r["title"])
            for s in interactive["action"].get("sections", [])
            for r in s["rows"]
        ]
        (reply_id,) = [option for option, shown_title in options if shown_title == title]
        self._post("reply", {"message_id": message["id"], "reply_id": reply_id})

    def open_flow(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._post(f"flows/{message['id']}", {})

    def submit(self, message: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        return self._post(f"flows/{message['id']}/submit", {"form": form})


def link_of(message: dict[str, Any]) -> str:
    """The URL of a cta_url message's button."""
    assert kind(message) == "interactive:cta_url", message
    return str(message["body"]["interactive"]["action"]["parameters"]["url"])


def checkout(url: str, outcome: str, duplicate: bool = False) -> str:
    """Opens a payment link (a recovery link leads on to its new session's page) and presses
    a button of the emulated Stripe Checkout page; returns the page's note."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text
    form = {"outcome": outcome, **({"duplicate": "1"} if duplicate else {})}
    answer = requests.post(page.url, data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


@dataclass
class Sandbox:
    """The emulators on free ports, connected to a running bot."""

    emulators: Emulators
    bot: LiveBot

    @property
    def page(self) -> str:
        """The page's address as the sandbox prints it (the Checkout page links back here)."""
        return self.emulators.page_url.rstrip("/")

    def customer(self, name: str) -> Customer:
        return Customer.add(self.page, name, self.idle)

    def idle(self) -> None:
        """Returns once the bot and the emulators have finished their work (no turn, event
        or notification pending, no event delivery or status report under way)."""
        wait_until_idle(self.bot.rasa_urls, [self.emulators.stripe, self.emulators.graph])


@pytest.fixture(scope="session")
def live_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox as `make sandbox` runs it, but on free ports, with the bot started by
    sandbox/launcher.start_bot (whose environment every live test shares) plus the
    emulators' settings."""
    emulators = Emulators(SandboxSecrets.generate(), Ports(0, 0, 0))
    emulators.start()
    try:
        bot = start_bot(
            tmp_path_factory.mktemp("sandbox"),
            emulators.bot_env(),
            {"connectors.whatsapp.channel.WhatsAppInput": {}},
        )
    except BaseException:
        emulators.stop()
        raise
    emulators.connect(bot.rasa_url)
    yield Sandbox(emulators, bot)
    bot.stop()
    emulators.stop()
