"""Whole purchases against the fakes: WhatsApp in, Stripe Checkout, Stripe's signed events
back, and exactly one confirmation per paid order — with the real Rasa and action servers."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.privacy.rights import export_customer
from connectors.storage.keys import ENV_VAR
from connectors.storage.opening import open_store
from connectors.storage.store import ConnectorStore
from sandbox import stripe_events as se
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.stripe_api import StripeEmulator
from tests.support.at_rest import found_in_tables
from tests.support.chat import Chat, emulated_platforms, text_of

pytestmark = pytest.mark.live  # every test here talks to the running bot

APP_SECRET = secrets.token_hex(16)
OLD_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
NEW_WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
_customers = iter(range(15550200000, 15550299999))
NOT_DATA = ("customer", "exported_at")  # the export's own header


def new_customer() -> str:
    return str(next(_customers))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("purchase")


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator, stripe_api: StripeEmulator, workdir: Path
) -> Iterator[LiveBot]:
    webhook_secrets = f"{OLD_WEBHOOK_SECRET},{NEW_WEBHOOK_SECRET}"
    env = emulated_platforms(graph_api, stripe_api, APP_SECRET, webhook_secrets)
    live = start_bot(workdir, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    return Chat(bot, graph_api, APP_SECRET)


@pytest.fixture(scope="module")
def store(bot: LiveBot, workdir: Path) -> ConnectorStore:
    return open_store(f"sqlite:///{workdir / 'bot.db'}")


def send_event(
    bot: LiveBot, event: dict[str, Any], secret: str = NEW_WEBHOOK_SECRET
) -> requests.Response:
    body, headers = se.signed(event, secret)
    return requests.post(
        f"{bot.rasa_url}/webhooks/whatsapp/stripe", data=body, headers=headers, timeout=10
    )


def order_and_get_link(
    chat: Chat, stripe_api: StripeEmulator, customer: str, product: str
) -> dict[str, Any]:
    """The customer orders `product` and taps 'pay'; returns the Checkout Session created."""
    before = len(chat.messages(customer))
    chat.say(customer, f"I'd like to order {product}")
    summary = chat.next_reply(customer, before)
    assert "Shall I send you the payment link?" in text_of(summary)
    chat.tap(customer, "/affirm", "Yes, pay now")
    link = chat.next_reply(customer, before + 1)
    assert link["interactive"]["type"] == "cta_url"
    url = link["interactive"]["action"]["parameters"]["url"]
    (session,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
    assert session["metadata"]["whatsapp_user_id"] == customer
    return session


def paid_event(
    stripe_api: StripeEmulator,
    session: dict[str, Any],
    paid_at_stripe: bool = True,
    **changes: Any,
) -> dict[str, Any]:
    """checkout.session.completed for `session`. Unless told otherwise (or the event says
    unpaid), the customer paid it at the emulated Stripe first, as the action looks it up."""
    unpaid = changes.get("payment_status", "paid") != "paid"
    if paid_at_stripe and not unpaid and session["payment_status"] != "paid":
        stripe_api.complete(session["id"])
    obj = se.session(
        session["id"],
        session["metadata"]["whatsapp_user_id"],
        session["metadata"]["order_id"],
        session["amount_total"],
    )
    return se.event("checkout.session.completed", {**obj, **changes})


def confirmations(chat: Chat, customer: str) -> list[str]:
    return [text_of(m) for m in chat.messages(customer) if "is confirmed" in text_of(m)]


def test_order_pay_confirm_exactly_once(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "espresso beans")
    assert session["mode"] == "payment" and session["amount_total"] == 1290 + 490  # delivery
    event = paid_event(stripe_api, session)
    assert send_event(bot, event).status_code == 200
    chat.wait(customer, 3)
    assert send_event(bot, event).json() == {"status": "duplicate"}  # the same event again
    later = se.event(
        "checkout.session.async_payment_succeeded",
        paid_event(stripe_api, session)["data"]["object"],
    )
    assert send_event(bot, later).status_code == 200  # another event saying the same
    chat.idle()
    (confirmation,) = confirmations(chat, customer)
    assert session["metadata"]["order_id"] in confirmation and "€12.90" in confirmation
    assert store.stripe.outcome(later["id"]) == "already_fulfilled"
    before = len(chat.messages(customer))
    chat.say(customer, "where is my order?")
    assert "paid" in text_of(chat.next_reply(customer, before))


def test_concurrent_duplicates_confirm_once(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "green tea")
    events = [paid_event(stripe_api, session) for _ in range(6)]
    events += [events[0]] * 4  # and the same event id several times at once
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda e=e: answers.append(send_event(bot, e).status_code))
        for e in events
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(events)
    chat.wait(customer, 3, settle=True)
    assert len(confirmations(chat, customer)) == 1


def test_late_expiry_does_not_undo_a_payment(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "decaf")
    send_event(bot, paid_event(stripe_api, session))
    chat.wait(customer, 3)
    expired = se.event(
        "checkout.session.expired",
        {**paid_event(stripe_api, session)["data"]["object"], "status": "expired"},
    )
    send_event(bot, expired)
    chat.idle()
    assert len(chat.messages(customer)) == 3
    chat.say(customer, "where is my order?")
    assert "paid" in text_of(chat.next_reply(customer, 3))


def test_declined_then_retry_then_paid(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    first = order_and_get_link(chat, stripe_api, customer, "filter coffee")
    failed = se.event(
        "checkout.session.async_payment_failed",
        paid_event(stripe_api, first, payment_status="unpaid")["data"]["object"],
    )
    send_event(bot, failed)
    offer = chat.next_reply(customer, 2)
    assert "didn't go through" in text_of(offer)
    chat.tap(customer, "/affirm", "New payment link")
    link = chat.next_reply(customer, 3)
    url = link["interactive"]["action"]["parameters"]["url"]
    (second,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
    assert second["id"] != first["id"]
    assert second["metadata"]["order_id"] == first["metadata"]["order_id"]
    send_event(bot, paid_event(stripe_api, second))
    chat.wait(customer, 5, settle=True)
    assert len(confirmations(chat, customer)) == 1


def test_expired_link_gets_a_fresh_one(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    first = order_and_get_link(chat, stripe_api, customer, "gift card")
    expired = se.event(
        "checkout.session.expired",
        {
            **paid_event(stripe_api, first, payment_status="unpaid")["data"]["object"],
            "status": "expired",
        },
    )
    send_event(bot, expired)
    nudge = chat.next_reply(customer, 2)
    assert "expired" in text_of(nudge) and nudge["interactive"]["type"] == "cta_url"
    url = nudge["interactive"]["action"]["parameters"]["url"]
    assert url != first["url"]
    (second,) = [s for s in stripe_api.sessions.values() if s["url"] == url]
    send_event(bot, paid_event(stripe_api, second))
    chat.wait(customer, 4, settle=True)
    assert len(confirmations(chat, customer)) == 1


def test_a_payment_stripe_has_not_taken_is_not_confirmed(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "espresso")
    send_event(bot, paid_event(stripe_api, session, paid_at_stripe=False, amount_total=1))
    reply = chat.next_reply(customer, 2)
    assert "checking it" in text_of(reply)
    assert confirmations(chat, customer) == []


def test_refund_and_subscription_messages(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "coffee club")
    assert session["mode"] == "subscription"
    send_event(bot, paid_event(stripe_api, session))
    chat.wait(customer, 3)
    metadata = session["metadata"]
    subscription = stripe_api.sessions[session["id"]]["subscription"]
    renewal = se.event(
        "invoice.paid",
        {
            "id": "in_1",
            "object": "invoice",
            "billing_reason": "subscription_cycle",
            "parent": {"subscription_details": {"metadata": metadata}},
        },
    )
    send_event(bot, renewal)
    assert "renewed" in text_of(chat.next_reply(customer, 3))
    send_event(
        bot,
        se.event(
            "customer.subscription.deleted",
            {"id": subscription, "object": "subscription", "metadata": metadata},
        ),
    )
    assert "subscription is cancelled" in text_of(chat.next_reply(customer, 4))

    buyer = new_customer()
    bought = order_and_get_link(chat, stripe_api, buyer, "pour-over kit")
    send_event(bot, paid_event(stripe_api, bought))
    chat.wait(buyer, 3)
    send_event(
        bot,
        se.event(
            "charge.refunded",
            {
                "id": "ch_1",
                "object": "charge",
                "amount": 3400,
                "amount_refunded": 3400,
                "refunded": True,
                "currency": "eur",
                "metadata": bought["metadata"],
            },
        ),
    )
    assert "refunded €34.00" in text_of(chat.next_reply(buyer, 3))


def test_cancel_expires_the_checkout_session(chat: Chat, stripe_api: StripeEmulator) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "sencha")
    chat.say(customer, "please cancel my order")
    assert "Cancel order" in text_of(chat.next_reply(customer, 2))
    chat.tap(customer, "/affirm", "Yes, cancel it")
    assert "is cancelled" in text_of(chat.next_reply(customer, 3))
    assert stripe_api.sessions[session["id"]]["status"] == "expired"


def test_stripe_down_then_retry(chat: Chat, stripe_api: StripeEmulator) -> None:
    customer = new_customer()
    chat.say(customer, "I want the espresso beans")
    chat.wait(customer, 1)
    sessions_before = len(stripe_api.sessions)
    stripe_api.queue_failures(500, 500, 500)
    chat.tap(customer, "/affirm", "Yes, pay now")
    apology = chat.next_reply(customer, 1)
    assert "couldn't create your payment link" in text_of(apology)
    assert len(stripe_api.sessions) == sessions_before
    chat.tap(customer, "/affirm", "Try again")
    link = chat.next_reply(customer, 2)
    assert link["interactive"]["type"] == "cta_url"


def test_confirmation_outside_the_window_is_the_template(
    chat: Chat, bot: LiveBot, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "decaf beans")
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update wa_customers set last_inbound_at = ? where customer_pseudonym = ?",
            (time.time() - 2 * 24 * 3600, store.keys.pseudonym(customer)),
        )
    send_event(bot, paid_event(stripe_api, session))
    template = chat.next_reply(customer, 2)
    assert template["type"] == "template" and template["template"]["name"] == "order_update"
    assert "is confirmed" in template["template"]["components"][0]["parameters"][0]["text"]


def test_bad_stripe_requests_are_refused_and_not_recorded(
    bot: LiveBot, store: ConnectorStore
) -> None:
    url = f"{bot.rasa_url}/webhooks/whatsapp/stripe"
    event = se.event("checkout.session.completed", {"id": "cs_x", "metadata": {}})
    body, headers = se.signed(event, "whsec_wrong")
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 400
    body, headers = se.signed(event, NEW_WEBHOOK_SECRET, at=int(time.time()) - 600)
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 400
    assert requests.post(url, data=body, timeout=5).status_code == 400
    for raw in (b"not json", b"[]", b'{"type": "x"}', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        _, signed_headers = se.signed({}, NEW_WEBHOOK_SECRET)
        signed_headers["Stripe-Signature"] = se.stripe_signature(
            raw, NEW_WEBHOOK_SECRET, int(time.time())
        )
        assert requests.post(url, data=raw, headers=signed_headers, timeout=5).status_code == 400
    huge = b'{"id": "evt_big", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    _, big_headers = se.signed({}, NEW_WEBHOOK_SECRET)
    big_headers["Stripe-Signature"] = se.stripe_signature(
        huge, NEW_WEBHOOK_SECRET, int(time.time())
    )
    assert requests.post(url, data=huge, headers=big_headers, timeout=10).status_code == 413
    assert store.stripe.outcome(event["id"]) is None
    body, headers = se.signed(event, OLD_WEBHOOK_SECRET)  # rotation: the old secret still works
    assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 200
    deadline = time.monotonic() + 10
    while store.stripe.outcome(event["id"]) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.stripe.outcome(event["id"]) == "missing_metadata"


def test_metrics_count_what_happened(bot: LiveBot) -> None:
    text = requests.get(f"{bot.rasa_url}/webhooks/whatsapp/metrics", timeout=5).text

    def value(sample: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(sample + " "))
        return float(line.rsplit(" ", 1)[1])

    assert value('shop_webhook_requests_total{status="200",webhook="stripe"}') > 10
    assert value('shop_webhook_requests_total{status="400",webhook="stripe"}') >= 5
    assert value('shop_webhook_requests_total{status="200",webhook="messages"}') > 10
    assert value('shop_outbox_delivery_attempts_total{result="sent"}') > 5
    assert value("shop_stripe_event_lag_seconds_count") > 10
    assert value("shop_outbox_pending") == 0
    assert value("shop_outbox_dead") == 0


def test_delete_my_data_asks_then_erases_everything_and_the_bot_starts_fresh(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore, workdir: Path
) -> None:
    customer = new_customer()
    session = order_and_get_link(chat, stripe_api, customer, "decaf beans")
    before = len(chat.messages(customer))
    chat.say(customer, "please delete my data")
    question = chat.next_reply(customer, before)
    assert "Delete it all?" in text_of(question)
    assert len(export_customer(store, customer)["conversation_events"]) > 0  # nothing gone yet

    chat.tap(customer, "/affirm", "Yes, delete it")
    done = chat.next_reply(customer, before + 1)
    assert "everything we held about you here is deleted" in text_of(done)
    assert stripe_api.sessions[session["id"]]["status"] == "expired"  # the link stopped first
    held = export_customer(store, customer)
    assert {name: rows for name, rows in held.items() if rows and name not in NOT_DATA} == {}
    found = found_in_tables(
        f"sqlite:///{workdir / 'bot.db'}", {"id": store.keys.pseudonym(customer)}
    )
    assert found == []

    chat.say(customer, "what's the status of my order?")
    fresh = chat.next_reply(customer, before + 2)
    assert "You don't have any orders with us yet" in text_of(fresh)


def test_delete_my_data_can_be_declined(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = new_customer()
    order_and_get_link(chat, stripe_api, customer, "espresso beans")
    before = len(chat.messages(customer))
    chat.say(customer, "forget me")
    chat.next_reply(customer, before)
    chat.tap(customer, "/deny", "No, keep it")
    assert text_of(chat.next_reply(customer, before + 1)) == "Fine, nothing is deleted."
    assert len(export_customer(store, customer)["wa_inbound_messages"]) == 4


def test_the_logs_hold_no_personal_data_or_secrets(
    bot: LiveBot, stripe_api: StripeEmulator
) -> None:
    """Runs last in this module, after every purchase above."""
    logs = "\n".join(path.read_text(errors="replace") for path in bot.logs)
    encryption_key = os.environ[ENV_VAR].split(":", 1)[1]
    secrets_and_data = ("155502", "wamid.", APP_SECRET, OLD_WEBHOOK_SECRET, NEW_WEBHOOK_SECRET)
    for value in (*secrets_and_data, stripe_api.api_key, encryption_key):
        assert value not in logs
    assert "type=checkout.session.completed" in logs and "customer=c-" in logs  # by reference
