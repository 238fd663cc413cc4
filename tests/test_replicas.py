"""Two Rasa replicas and one action server on PostgreSQL and Redis: the same Stripe event
delivered to both replicas at once, and many distinct ones, confirm each paid order once; a
message to one replica while the other opens a hand-over goes to the shop, not to the bot."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.storage.opening import open_store
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.shop_inbox import ShopInbox
from sandbox.stripe_api import StripeEmulator
from tests.support import redis_server
from tests.support.at_rest import found_in_tables
from tests.support.chat import Chat, text_of
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.live  # every test here talks to the running bot

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
HANDOVER_SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    reason = redis_server.unreachable_reason()
    if reason:
        pytest.skip(reason)
    with temporary_database("shop_replicas") as url:
        open_store(url)  # migrate once, as `make migrate` does before replicas start
        yield url


@pytest.fixture(scope="module")
def inbox() -> Iterator[ShopInbox]:
    """The shop's hand-over webhook receiver."""
    server = ShopInbox(HANDOVER_SECRET, secrets.token_urlsafe(24))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    database: str,
    graph_api: GraphApiEmulator,
    stripe_api: StripeEmulator,
    inbox: ShopInbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveBot]:
    env = {
        "HANDOVER_WEBHOOK_URL": inbox.url,
        "HANDOVER_WEBHOOK_SECRET": HANDOVER_SECRET,
        "DATABASE_URL": database,
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
        "STRIPE_SECRET_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    lock_store = {
        "type": "connectors.storage.lock_store.PseudonymousRedisLockStore",
        "url": "127.0.0.1",
        "port": 6379,
        "db": 0,
        "key_prefix": f"replicas{secrets.token_hex(4)}",
    }
    bot = start_bot(
        tmp_path_factory.mktemp("replicas"),
        env,
        {"connectors.whatsapp.channel.WhatsAppInput": {}},
        replicas=2,
        lock_store=lock_store,
    )
    yield bot
    bot.stop()


def pay_link(chat: Chat, stripe_api: StripeEmulator, customer: str) -> dict[str, Any]:
    chat.say(customer, "I'd like the gift card")
    chat.wait(customer, 1)
    chat.tap(customer, "/affirm", "Yes, pay now")
    url = chat.wait(customer, 2)[1]["interactive"]["action"]["parameters"]["url"]
    (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
    return session


def test_each_paid_order_is_confirmed_once_across_replicas(
    replicas: LiveBot, graph_api: GraphApiEmulator, stripe_api: StripeEmulator, database: str
) -> None:
    first, second = (
        Chat(replicas, graph_api, APP_SECRET),
        Chat(LiveBot(replicas.rasa_urls[1:], replicas.actions_url, [], []), graph_api, APP_SECRET),
    )
    customers = [f"1555040{n:04d}" for n in range(6)]
    sessions = {
        c: pay_link(first if n % 2 else second, stripe_api, c) for n, c in enumerate(customers)
    }

    deliveries = []
    for customer, session in sessions.items():
        stripe_api.complete(session["id"])  # paid at Stripe, where the action looks
        obj = se.session(
            session["id"], customer, session["metadata"]["order_id"], session["amount_total"]
        )
        same = se.event("checkout.session.completed", obj)
        also = se.event("checkout.session.async_payment_succeeded", obj)
        for url in replicas.rasa_urls:  # the same event to both replicas at once
            deliveries.append((url, same))
        deliveries.append((replicas.rasa_urls[1], also))  # and a second event for the session
    answers: list[int] = []

    def deliver(url: str, event: dict[str, Any]) -> None:
        body, headers = se.signed(event, WEBHOOK_SECRET)
        answers.append(
            requests.post(
                f"{url}/webhooks/whatsapp/stripe", data=body, headers=headers, timeout=30
            ).status_code
        )

    threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(deliveries)
    for customer in customers:
        messages = first.wait(customer, 3)
        confirmations = [m for m in messages if "is confirmed" in text_of(m)]
        assert len(confirmations) == 1, [text_of(m) for m in messages]
    first.idle()
    for customer in customers:
        assert sum("is confirmed" in text_of(m) for m in first.messages(customer)) == 1

    # Read directly, the PostgreSQL tables hold none of it in clear.
    forbidden = {
        "customer numbers": "1555040",
        "profile names": "Test Customer",
        "typed text": "I'd like the gift card",
        "the bot's replies": "is confirmed",
        "message ids": "wamid.",
    }
    assert found_in_tables(database, forbidden) == []


def test_a_message_to_one_replica_while_the_other_hands_over_goes_to_the_shop(
    replicas: LiveBot, graph_api: GraphApiEmulator, inbox: ShopInbox
) -> None:
    """The second message must see the hand-over its conversation's previous turn opened,
    whichever replica each message reached (Meta's deliveries are spread across them)."""
    first, second = (
        Chat(replicas, graph_api, APP_SECRET),
        Chat(LiveBot(replicas.rasa_urls[1:], replicas.actions_url, [], []), graph_api, APP_SECRET),
    )
    customer = "15550408888"
    actions = replicas.processes[0]
    asked = first.say(customer, "can I talk to a person")
    read_receipt_of(graph_api, asked)  # the first replica has taken the message to Rasa
    os.killpg(actions.pid, signal.SIGSTOP)  # and its turn waits for action_hand_over
    try:
        second.say(customer, "hello are you there")
        time.sleep(0.5)  # the second replica has taken its message as far as it can
    finally:
        os.killpg(actions.pid, signal.SIGCONT)
    first.idle()
    texts = [text_of(m) for m in first.messages(customer)]
    assert len(texts) == 1 and "a person will answer you here" in texts[0], texts
    deadline = time.monotonic() + 10
    while not inbox.received("handover.message"):  # the shop's events go out by the outbox
        assert time.monotonic() < deadline, inbox.received()
        time.sleep(0.05)
    first.idle()
    (started,) = inbox.received("handover.started")
    forwarded = inbox.received("handover.message", started["handover"]["ref"])
    assert [e["message"]["text"] for e in forwarded] == ["hello are you there"]


def read_receipt_of(graph_api: GraphApiEmulator, message_id: str) -> None:
    """Waits for the bot's read receipt of `message_id`: its replica is past the pause check."""
    deadline = time.monotonic() + 10
    while not any(
        isinstance(r.json, dict) and r.json.get("message_id") == message_id
        for r in list(graph_api.requests)
    ):
        assert time.monotonic() < deadline, "no read receipt"
        time.sleep(0.02)


def test_a_replica_killed_while_holding_work_is_replaced_by_another(
    database: str,
    graph_api: GraphApiEmulator,
    stripe_api: StripeEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = {
        "DATABASE_URL": database,
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
        "STRIPE_SECRET_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REPLAY_LEASE_SECONDS": "2",
        "REPLAY_INTERVAL_SECONDS": "0.5",
    }
    lock_store = {
        "type": "connectors.storage.lock_store.PseudonymousRedisLockStore",
        "url": "127.0.0.1",
        "port": 6379,
        "db": 0,
        "key_prefix": f"takeover{secrets.token_hex(4)}",
        "lock_lifetime": 5,  # the dead replica held the conversation's lock; it lapses then
    }
    bot = start_bot(
        tmp_path_factory.mktemp("takeover"),
        env,
        {"connectors.whatsapp.channel.WhatsAppInput": {}},
        replicas=2,
        lock_store=lock_store,
    )
    chat = Chat(bot, graph_api, APP_SECRET)
    customer = "15550499999"
    try:
        session = pay_link(chat, stripe_api, customer)
        actions, doomed = bot.processes[0], bot.processes[1]
        os.killpg(actions.pid, signal.SIGSTOP)  # the turn will be in flight on replica 1
        stripe_api.complete(session["id"])  # paid at Stripe, where the action looks
        obj = se.session(
            session["id"], customer, session["metadata"]["order_id"], session["amount_total"]
        )
        body, headers = se.signed(se.event("checkout.session.completed", obj), WEBHOOK_SECRET)
        answer = requests.post(
            f"{bot.rasa_urls[0]}/webhooks/whatsapp/stripe", data=body, headers=headers, timeout=10
        )
        assert answer.status_code == 200
        time.sleep(0.5)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
        os.killpg(actions.pid, signal.SIGCONT)
        messages = chat.wait(customer, 3, settle=True)
        confirmations = [m for m in messages if "is confirmed" in text_of(m)]
        assert len(confirmations) == 1
    finally:
        for process in bot.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)
        bot.stop()
