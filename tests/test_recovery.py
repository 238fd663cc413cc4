"""Crash recovery: work acknowledged to Meta and Stripe survives a kill -9 of the Rasa server
and is finished exactly once after the restart."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from connectors.storage.opening import open_store
from sandbox import meta
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.processes import ROOT
from sandbox.stripe_api import StripeEmulator
from shop_contract.flow_tokens import issue_token
from tests.support.chat import Chat, text_of

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)


@pytest.fixture
def fakes() -> Iterator[tuple[GraphApiEmulator, StripeEmulator]]:
    graph, stripe_api = GraphApiEmulator(), StripeEmulator("sk_test_" + secrets.token_hex(12))
    graph.start()
    stripe_api.start()
    yield graph, stripe_api
    graph.stop()
    stripe_api.stop()


def environment(graph: GraphApiEmulator, stripe_api: StripeEmulator) -> dict[str, str]:
    return {
        "WHATSAPP_ACCESS_TOKEN": graph.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph.base_url,
        "STRIPE_SECRET_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REPLAY_LEASE_SECONDS": "1",
        "REPLAY_INTERVAL_SECONDS": "0.5",
    }


def kill_hard(bot: LiveBot) -> None:
    """kill -9 of the Rasa server first: killing the action server first would fail the
    Rasa turn in flight before Rasa itself dies, which is another scenario."""
    for process in reversed(bot.processes):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.live
def test_kill_9_between_acknowledging_and_confirming(
    tmp_path: Path, fakes: tuple[GraphApiEmulator, StripeEmulator]
) -> None:
    graph, stripe_api = fakes
    env = environment(graph, stripe_api)
    bot = start_bot(tmp_path, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    chat = Chat(bot, graph, APP_SECRET)
    payer, browser = "15550301111", "15550302222"
    try:
        chat.say(payer, "I'd like espresso beans")
        chat.wait(payer, 1)
        chat.tap(payer, "/affirm", "Yes, pay now")
        link = chat.wait(payer, 2)[1]
        url = link["interactive"]["action"]["parameters"]["url"]
        (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]

        # The action server hangs: every turn that needs it is in flight when Rasa dies.
        os.killpg(bot.processes[0].pid, signal.SIGSTOP)
        stripe_api.complete(session["id"])  # paid at Stripe, where the action looks
        obj = se.session(
            session["id"], payer, session["metadata"]["order_id"], session["amount_total"]
        )
        event = se.event("checkout.session.completed", obj)
        body, headers = se.signed(event, WEBHOOK_SECRET)
        stripe_url = f"{bot.rasa_url}/webhooks/whatsapp/stripe"
        assert requests.post(stripe_url, data=body, headers=headers, timeout=10).status_code == 200
        chat.say(browser, "what do you sell?")
        time.sleep(1.0)
        kill_hard(bot)
    finally:
        for process in bot.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert chat.messages(browser) == [] and len(chat.messages(payer)) == 2

    restarted = start_bot(tmp_path, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    chat = replace(chat, bot=restarted)
    try:
        confirmation = chat.wait(payer, 3, settle=True)
        assert len(confirmation) == 3 and "is confirmed" in text_of(confirmation[2])
        (catalog,) = chat.wait(browser, 1)
        assert "Espresso Beans" in str(catalog)
        store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
        assert store.stripe.outcome(event["id"]) == "triggered"
        # Stripe retries the same event: still one confirmation.
        assert requests.post(
            f"{restarted.rasa_url}/webhooks/whatsapp/stripe", data=body, headers=headers, timeout=10
        ).json() == {"status": "duplicate"}
        chat.idle()
        assert len(chat.messages(payer)) == 3
        health = requests.get(f"{restarted.rasa_url}/webhooks/whatsapp/", timeout=5).json()
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["pending_messages"] == 0 and health["pending_stripe_events"] == 0
    finally:
        restarted.stop()


@pytest.mark.live
def test_confirmation_waits_out_a_graph_api_outage(
    tmp_path: Path, fakes: tuple[GraphApiEmulator, StripeEmulator]
) -> None:
    graph, stripe_api = fakes
    env = {
        **environment(graph, stripe_api),
        "OUTBOX_BASE_DELAY_SECONDS": "0.5",
        "OUTBOX_POLL_SECONDS": "0.5",
    }
    bot = start_bot(tmp_path, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    chat = Chat(bot, graph, APP_SECRET)
    customer = "15550303333"
    try:
        chat.say(customer, "I'd like the gift card")
        chat.wait(customer, 1)
        chat.tap(customer, "/affirm", "Yes, pay now")
        url = chat.wait(customer, 2)[1]["interactive"]["action"]["parameters"]["url"]
        (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
        graph.refuse_connections()
        stripe_api.complete(session["id"])  # paid at Stripe, where the action looks
        obj = se.session(session["id"], customer, session["metadata"]["order_id"], 2500)
        body, headers = se.signed(se.event("checkout.session.completed", obj), WEBHOOK_SECRET)
        stripe_url = f"{bot.rasa_url}/webhooks/whatsapp/stripe"
        assert requests.post(stripe_url, data=body, headers=headers, timeout=10).status_code == 200
        store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
        deadline = time.monotonic() + 30  # until a whole delivery attempt has failed
        while time.monotonic() < deadline:
            pending = store.outbox.entries("pending")
            if pending and pending[0].attempts >= 1:
                break
            time.sleep(0.2)
        (entry,) = store.outbox.entries("pending")
        assert entry.attempts >= 1 and entry.customer_id == customer
        assert entry.last_error is not None and "GraphApiError" in entry.last_error
        graph.accept_connections()
        messages = chat.wait(customer, 3, settle=True)
        assert len(messages) == 3 and "is confirmed" in text_of(messages[2])
        assert [e.status for e in store.outbox.entries()] == ["sent"]
    finally:
        bot.stop()


def restart_action_server(bot: LiveBot, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The action server comes back on its port."""
    port = bot.actions_url.rsplit(":", 1)[1]
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "rasa"),
            "run",
            "actions",
            "--actions",
            "actions",
            "--port",
            port,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.live
def test_an_action_server_outage_delays_the_confirmation_but_does_not_lose_it(
    tmp_path: Path, fakes: tuple[GraphApiEmulator, StripeEmulator]
) -> None:
    graph, stripe_api = fakes
    env = environment(graph, stripe_api)
    bot = start_bot(tmp_path, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    chat = Chat(bot, graph, APP_SECRET)
    customer = "15550304444"
    replacement: subprocess.Popen[bytes] | None = None
    try:
        chat.say(customer, "I'd like the gift card")
        chat.wait(customer, 1)
        chat.tap(customer, "/affirm", "Yes, pay now")
        url = chat.wait(customer, 2)[1]["interactive"]["action"]["parameters"]["url"]
        (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
        actions = bot.processes[0]
        os.killpg(actions.pid, signal.SIGKILL)  # the action server is gone
        actions.wait(timeout=10)
        stripe_api.complete(session["id"])  # paid at Stripe, where the action looks
        obj = se.session(session["id"], customer, session["metadata"]["order_id"], 2500)
        event = se.event("checkout.session.completed", obj)
        body, headers = se.signed(event, WEBHOOK_SECRET)
        stripe_url = f"{bot.rasa_url}/webhooks/whatsapp/stripe"
        assert requests.post(stripe_url, data=body, headers=headers, timeout=10).status_code == 200
        time.sleep(3.0)
        store = open_store(f"sqlite:///{tmp_path / 'bot.db'}")
        assert store.stripe.outcome(event["id"]) is None  # not counted as handled
        assert len(chat.messages(customer)) == 2
        replacement = restart_action_server(bot, env)
        messages = chat.wait(customer, 3, settle=True)
        assert len(messages) == 3 and "is confirmed" in text_of(messages[2])
        assert store.stripe.outcome(event["id"]) == "triggered"
    finally:
        if replacement is not None:
            os.killpg(replacement.pid, signal.SIGTERM)
            replacement.wait(timeout=20)
        bot.stop()


@pytest.mark.live
def test_a_flow_completion_during_an_action_server_outage_still_makes_one_order(
    tmp_path: Path, fakes: tuple[GraphApiEmulator, StripeEmulator]
) -> None:
    graph, stripe_api = fakes
    env = environment(graph, stripe_api)
    bot = start_bot(tmp_path, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    chat = Chat(bot, graph, APP_SECRET)
    customer = "15550305555"
    token = issue_token(customer, (APP_SECRET,))
    completion = {
        "flow_token": token,
        "flow_ref": token,
        "product": "gift-card",
        "quantity": "1",
        "name": "",
        "street": "",
        "postal_code": "",
        "city": "",
    }

    def complete() -> None:
        document = meta.notification(
            [meta.nfm_reply(customer, completion)], [meta.contact(customer)]
        )
        assert chat.post(document).status_code == 200

    replacement: subprocess.Popen[bytes] | None = None
    try:
        actions = bot.processes[0]
        os.killpg(actions.pid, signal.SIGKILL)  # the action server is gone
        actions.wait(timeout=10)
        complete()
        time.sleep(3.0)
        assert stripe_api.sessions == {}  # no order yet
        replacement = restart_action_server(bot, env)
        complete()  # the customer submits the Flow's completion again
        messages = chat.wait(customer, 1, settle=True)
        orders = [m for m in messages if "Gift Card" in text_of(m)]
        assert len(orders) == 1, [text_of(m) for m in messages]
        assert len(stripe_api.sessions) == 1
    finally:
        if replacement is not None:
            os.killpg(replacement.pid, signal.SIGTERM)
            replacement.wait(timeout=20)
        bot.stop()
