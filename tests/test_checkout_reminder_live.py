"""The reminder before a payment link expires, through the real servers: one reminder with
the link for an unpaid order (and no second one when its turn runs again), as the Utility
template outside the 24-hour window, none after the customer said stop, none for a paid
order; "no thanks" to a reminder opts out of the expiry's recovery message too. Links last
60 minutes and reminders come 15 minutes before; the tests move a reminder's time into the
past in the database rather than wait, and the connector's sweep (every second here) does
the rest."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.storage.opening import open_store
from connectors.storage.schema import checkout_reminders
from connectors.storage.store import ConnectorStore
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.stripe_api import StripeEmulator
from tests.support.chat import Chat, emulated_platforms, order_and_get_link, text_of

pytestmark = pytest.mark.live  # every test here talks to the running bot

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
OPT_OUT_HINT = "Reply STOP and I won't send you payment reminders."
WAIT_SECONDS = 30
_customers = iter(range(15550400000, 15550499999))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reminder")


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator, stripe_api: StripeEmulator, workdir: Path
) -> Iterator[LiveBot]:
    env = {
        **emulated_platforms(graph_api, stripe_api, APP_SECRET, WEBHOOK_SECRET),
        "CHECKOUT_EXPIRY_MINUTES": "60",
        "CHECKOUT_REMINDER_MINUTES": "15",
        "REPLAY_INTERVAL_SECONDS": "1",
    }
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


def reminder_row(store: ConnectorStore, customer: str) -> Any:
    """The customer's one reminder row, once the link's turn has stored it."""
    mine = checkout_reminders.c.customer_pseudonym == store.keys.pseudonym(customer)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(checkout_reminders).where(mine)).all()
        if rows:
            (row,) = rows
            return row
        assert time.monotonic() < deadline, "no reminder stored for the link"
        time.sleep(0.2)


def make_due(store: ConnectorStore, customer: str) -> None:
    """The reminder's time has come (and, if it ran before, it runs again)."""
    row = reminder_row(store, customer)
    with store.engine.begin() as connection:
        connection.execute(
            checkout_reminders.update()
            .where(checkout_reminders.c.reminder_id == row.reminder_id)
            .values(remind_at=time.time() - 1, done_at=None, claimed_at=None)
        )


def wait_done(store: ConnectorStore, customer: str) -> None:
    """Returns once the reminder's turn has run."""
    deadline = time.monotonic() + WAIT_SECONDS
    while reminder_row(store, customer).done_at is None:
        assert time.monotonic() < deadline, "the reminder's turn did not run"
        time.sleep(0.2)


def test_an_unpaid_link_gets_one_reminder_with_the_link(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    row = reminder_row(store, customer)
    assert row.checkout_session_id == session["id"]
    assert row.remind_at == session["expires_at"] - 15 * 60
    assert customer not in str(row.customer_sealed)

    make_due(store, customer)
    reminder = chat.next_reply(customer, 2)
    assert reminder["interactive"]["type"] == "cta_url"
    assert reminder["interactive"]["action"]["parameters"]["url"] == session["url"]
    assert text_of(reminder).endswith(OPT_OUT_HINT)
    assert session["metadata"]["order_id"] in text_of(reminder)
    wait_done(store, customer)
    make_due(store, customer)  # its turn runs again (a crash, another replica): nothing more
    wait_done(store, customer)
    assert len(chat.wait(customer, 3, settle=True)) == 3


def test_no_reminder_after_the_customer_said_stop(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    order_and_get_link(chat, stripe_api, customer)
    chat.say(customer, "stop reminding me")
    assert "won't send you any more payment reminders" in text_of(chat.next_reply(customer, 2))
    make_due(store, customer)
    wait_done(store, customer)
    assert len(chat.wait(customer, 3, settle=True)) == 3  # nothing after the opt-out's reply


def test_no_thanks_to_the_reminder_means_no_recovery_message_when_the_link_expires(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    make_due(store, customer)
    assert text_of(chat.next_reply(customer, 2)).endswith(OPT_OUT_HINT)
    wait_done(store, customer)
    chat.say(customer, "no thanks")
    assert "won't send you any more payment reminders" in text_of(chat.next_reply(customer, 3))
    stripe_api.expire(session["id"])
    assert len(chat.wait(customer, 4, settle=True)) == 4  # no recovery message after it


def test_no_reminder_for_a_paid_order(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    stripe_api.complete(session["id"])
    order_id = session["metadata"]["order_id"]
    assert f"Order {order_id} is confirmed" in text_of(chat.next_reply(customer, 2))
    make_due(store, customer)
    wait_done(store, customer)
    assert len(chat.wait(customer, 3, settle=True)) == 3  # the confirmation was the last


def test_outside_the_window_the_reminder_goes_as_the_template(
    chat: Chat, stripe_api: StripeEmulator, store: ConnectorStore
) -> None:
    customer = str(next(_customers))
    session = order_and_get_link(chat, stripe_api, customer)
    reminder_row(store, customer)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "update wa_customers set last_inbound_at = ? where customer_pseudonym = ?",
            (time.time() - 2 * 24 * 3600, store.keys.pseudonym(customer)),
        )
    make_due(store, customer)
    template = chat.next_reply(customer, 2)
    assert template["type"] == "template" and template["template"]["name"] == "order_update"
    text = template["template"]["components"][0]["parameters"][0]["text"]
    assert session["url"] in text and OPT_OUT_HINT in text
    wait_done(store, customer)
    assert len(chat.wait(customer, 3, settle=True)) == 3  # the template only, once
