"""An unpaid link that expires, through the real servers: the customer gets exactly one
recovery message whose link works (even when Stripe delivers the expiry twice, or two
events report it), none after saying stop or "no thanks" to one, one again after "remind me
again", and the Utility template outside the 24-hour
window. The Stripe emulator delivers its own signed events to the bot, as Stripe does."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.stripe_api import StripeEmulator
from tests.support.chat import Chat, emulated_platforms, order_and_get_link, text_of

pytestmark = pytest.mark.live  # every test here talks to the running bot

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
OPT_OUT_HINT = "Reply STOP and I won't send you payment reminders."
_customers = iter(range(15550300000, 15550399999))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("followup")


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator, stripe_api: StripeEmulator, workdir: Path
) -> Iterator[LiveBot]:
    env = emulated_platforms(graph_api, stripe_api, APP_SECRET, WEBHOOK_SECRET)
    live = start_bot(workdir, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    stripe_api.send_events_to(f"{live.rasa_url}/webhooks/whatsapp/stripe", WEBHOOK_SECRET)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    return Chat(bot, graph_api, APP_SECRET)


@pytest.fixture(scope="module")
def store(bot: LiveBot, workdir: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{workdir / 'bot.db'}")


def test_an_expired_link_yields_one_recovery_message_whose_link_pays(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    stripe_api.expire(session["id"], duplicate=True)  # the event delivered twice
    recovery = chat.next_reply(customer, 2)
    # A second event reporting the same expiry (another id, as two replicas might each see
    # one): the order was followed up, and the outbox holds its one follow-up.
    again = se.event("checkout.session.expired", dict(stripe_api.sessions[session["id"]]))
    body, headers = se.signed(again, WEBHOOK_SECRET)
    webhook = f"{bot.rasa_url}/webhooks/whatsapp/stripe"
    assert requests.post(webhook, data=body, headers=headers, timeout=10).ok
    assert len(chat.wait(customer, 3, settle=True)) == 3

    assert recovery["interactive"]["type"] == "cta_url"
    url = recovery["interactive"]["action"]["parameters"]["url"]
    assert url == session["after_expiration"]["recovery"]["url"]
    assert "expired" in text_of(recovery) and text_of(recovery).endswith(OPT_OUT_HINT)
    opened = requests.get(url, timeout=5)  # the customer taps it: a copy of the session
    assert opened.ok and 'id="status">open</strong>' in opened.text
    (copy,) = [s for s in stripe_api.sessions.values() if s["recovered_from"] == session["id"]]
    stripe_api.complete(copy["id"])
    confirmation = chat.next_reply(customer, 3)
    order_id = session["metadata"]["order_id"]
    assert f"Order {order_id} is confirmed" in text_of(confirmation)
    assert len(chat.wait(customer, 4, settle=True)) == 4


def test_a_customer_who_said_stop_gets_no_recovery_message(
    chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    chat.say(customer, "stop reminding me")
    assert "won't send you any more payment reminders" in text_of(chat.next_reply(customer, 2))
    stripe_api.expire(session["id"])
    assert len(chat.wait(customer, 3, settle=True)) == 3  # nothing after the confirmation
    chat.say(customer, "where is my order?")
    assert "expired" in text_of(chat.next_reply(customer, 3))


def test_no_thanks_to_a_recovery_message_stops_the_next_ones(
    chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    stripe_api.expire(session["id"])
    assert text_of(chat.next_reply(customer, 2)).endswith(OPT_OUT_HINT)
    chat.say(customer, "no thanks")
    assert "won't send you any more payment reminders" in text_of(chat.next_reply(customer, 3))
    later = order_and_get_link_again(chat, stripe_api, customer, sent_before=4)
    stripe_api.expire(later["id"])
    assert len(chat.wait(customer, 8, settle=True)) == 8  # no recovery for the later order
    chat.say(customer, "where is my order?")
    assert "expired" in text_of(chat.next_reply(customer, 8))


def test_remind_me_again_after_stop_brings_the_recovery_message_back(
    chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    chat.say(customer, "stop reminding me")
    assert "won't send you any more payment reminders" in text_of(chat.next_reply(customer, 2))
    stripe_api.expire(session["id"])
    assert len(chat.wait(customer, 3, settle=True)) == 3  # opted out: nothing
    chat.say(customer, "remind me again")
    assert "payment reminders are on" in text_of(chat.next_reply(customer, 3))
    later = order_and_get_link_again(chat, stripe_api, customer, sent_before=4)
    stripe_api.expire(later["id"])
    recovery = chat.next_reply(customer, 8)
    assert later["metadata"]["order_id"] in text_of(recovery)
    url = recovery["interactive"]["action"]["parameters"]["url"]
    assert url == stripe_api.sessions[later["id"]]["after_expiration"]["recovery"]["url"]
    assert len(chat.wait(customer, 9, settle=True)) == 9  # once


def test_outside_the_window_the_recovery_goes_as_the_template(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update wa_customers set last_inbound_at = ? where customer_pseudonym = ?",
            (time.time() - 2 * 24 * 3600, store.keys.pseudonym(customer)),
        )
    stripe_api.expire(session["id"])
    template = chat.next_reply(customer, 2)
    assert template["type"] == "template" and template["template"]["name"] == "order_update"
    text = template["template"]["components"][0]["parameters"][0]["text"]
    assert session["after_expiration"]["recovery"]["url"] in text and OPT_OUT_HINT in text
    assert len(chat.wait(customer, 3, settle=True)) == 3  # the template only, once


def expire_and_get_recovery_url(chat: Chat, stripe_api: StripeEmulator, customer: str) -> str:
    """The customer's link expires unpaid; returns the recovery URL of the follow-up."""
    session = order_and_get_link(chat, stripe_api, customer)
    stripe_api.expire(session["id"])
    recovery = chat.next_reply(customer, 2)
    return str(recovery["interactive"]["action"]["parameters"]["url"])


def pay_recovered_copy(stripe_api: StripeEmulator, url: str) -> dict[str, Any]:
    """The customer taps the old recovery button and pays the copy it opens."""
    assert requests.get(url, timeout=5).ok
    (copy,) = [
        s
        for s in stripe_api.sessions.values()
        if s["recovered_from"] and url.endswith(s["recovered_from"])
    ]
    stripe_api.complete(copy["id"])
    return copy


def cancel_order(chat: Chat, customer: str, sent_before: int) -> str:
    """The customer cancels their open order (asked, then confirmed); the bot's answer."""
    chat.say(customer, "cancel my order")
    assert "Cancel order" in text_of(chat.next_reply(customer, sent_before))
    chat.tap(customer, "/affirm", "Yes, cancel it")
    cancelled = text_of(chat.next_reply(customer, sent_before + 1))
    assert "is cancelled" in cancelled, cancelled
    return cancelled


def order_and_get_link_again(
    chat: Chat, stripe_api: StripeEmulator, customer: str, sent_before: int
) -> dict[str, Any]:
    """An expired order stays open until cancelled: cancels it, then orders again."""
    cancel_order(chat, customer, sent_before)
    return order_and_get_link(chat, stripe_api, customer, sent_before=sent_before + 2)


def test_a_cancelled_order_paid_through_its_recovery_link_is_refunded_not_confirmed(
    chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = str(next(_customers))
    url = expire_and_get_recovery_url(chat, stripe_api, customer)
    cancelled = cancel_order(chat, customer, 3)
    assert "is cancelled. Nothing was charged." in cancelled
    assert "no longer works" not in cancelled and "we'll refund that payment" in cancelled

    copy = pay_recovered_copy(stripe_api, url)
    told = text_of(chat.next_reply(customer, 5))
    assert "was cancelled" in told and "refunded it in full" in told
    assert "confirmed" not in told
    paid = stripe_api.sessions[copy["id"]]
    (refund,) = stripe_api.refunded_of(paid["payment_intent"])
    assert refund["amount"] == paid["amount_total"]
    # Stripe's charge.refunded for that refund says nothing more: the customer is told once.
    assert len(chat.wait(customer, 6, settle=True)) == 6
    chat.say(customer, "where is my order?")
    assert "cancelled" in text_of(chat.next_reply(customer, 6))


def test_a_recovered_copy_without_our_metadata_still_confirms_its_order(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    stripe_api.expire(session["id"])
    url = chat.next_reply(customer, 2)["interactive"]["action"]["parameters"]["url"]
    stripe_api.recover_without_metadata()
    try:
        copy = pay_recovered_copy(stripe_api, url)
    finally:
        stripe_api.recover_without_metadata(False)
    assert copy["metadata"] == {}
    order_id = session["metadata"]["order_id"]
    assert f"Order {order_id} is confirmed" in text_of(chat.next_reply(customer, 3))
    assert len(chat.wait(customer, 4, settle=True)) == 4
    # What was recorded to find it is sealed: neither the customer nor the order in clear.
    with store.engine.connect() as connection:
        (row,) = connection.exec_driver_sql(
            "select customer_sealed, order_sealed from stripe_events where checkout_session_id = ?",
            (session["id"],),
        ).fetchall()
    assert customer not in str(row) and order_id not in str(row)


def test_a_paid_session_that_names_no_customer_is_an_error_and_counted(
    bot: LiveBot, store: ConnectorStore
) -> None:
    def unmapped() -> float:
        text = requests.get(f"{bot.rasa_url}/webhooks/whatsapp/metrics", timeout=5).text
        (line,) = [
            x for x in text.splitlines() if x.startswith("shop_stripe_unmapped_payments_total")
        ]
        return float(line.split()[-1])

    before = unmapped()
    paid = se.session("cs_test_" + secrets.token_hex(8), "x", "ORD-NONE", 1390)
    paid["metadata"] = {}
    event = se.event("checkout.session.completed", paid)
    body, headers = se.signed(event, WEBHOOK_SECRET)
    assert requests.post(
        f"{bot.rasa_url}/webhooks/whatsapp/stripe", data=body, headers=headers, timeout=10
    ).ok
    deadline = time.time() + 10
    while store.stripe.outcome(event["id"]) is None and time.time() < deadline:
        time.sleep(0.1)
    assert store.stripe.outcome(event["id"]) == "unmapped_payment"
    assert unmapped() == before + 1
    logged = [line for line in bot.log_tail().splitlines() if event["id"] in line]
    assert any("ERROR" in line and "outcome=unmapped_payment" in line for line in logged)
