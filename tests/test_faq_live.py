"""What shoppers ask, through the real servers: WhatsApp in (signed, as Meta sends it), the
trained model, the action server, the Graph API emulator out, each on a fresh conversation:
the questions issue #16 quotes, other phrasings (not in the training data), paths over
several turns, and the hand-over to a person (tests/support/handover.py: the shop's inbox
gets the signed webhook, the staff use the operator API over HTTP)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import meta
from sandbox.graph_api import GraphApiEmulator
from sandbox.launcher import LiveBot, start_bot
from sandbox.shop_inbox import ShopInbox
from sandbox.stripe_api import StripeEmulator
from shop_contract.shop import default_shop
from tests.support.chat import Chat, text_of
from tests.support.handover import Staff

pytestmark = pytest.mark.live

APP_SECRET = secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
HANDOVER_SECRET = secrets.token_urlsafe(24)
OPERATOR_TOKEN = secrets.token_urlsafe(24)
STAFF = "15550688888"
TIMEOUT_MINUTES = 60
_customers = iter(range(15550600000, 15550699999))
PHONE = default_shop().contact.phone

# (question, what the answer must say, what it must not say)
QUOTED_IN_THE_ISSUE = [
    ("how much is the pour-over kit?", "Pour-Over Kit: €34.00.", "Espresso Beans"),
    ("do you deliver to Austria?", "Yes, we deliver to Austria: €7.90, 2–4 working days", "Sorry"),
    ("can I pay with PayPal?", "Sorry, we don't take PayPal. You can pay with", "Order"),
    ("what are your opening hours?", "Monday–Friday: 09:00–18:00", "Espresso"),
    ("what is your return policy?", "Returns within 30 days of delivery", "Espresso"),
    ("I want to cancel my subscription", "I can't find a subscription of yours", "order"),
    ("can I talk to a real person?", "a person will answer you here in this chat", "bot"),
    ("the beans were stale, I want my money back", "I'm sorry about that.", "ORD-"),
]
OTHER_PHRASINGS = [
    ("hey do u guys ship to switzerland", "Yes, we deliver to Switzerland: €14.90", "Sorry"),
    ("could you send a parcel to Japan?", "Sorry, we don't deliver to Japan.", "€"),
    ("what are the shipping costs", "We deliver to:\n• Germany: €4.90", "Sorry"),
    ("is apple pay an option", "You can pay with", "don't take"),
    ("till what time are you open on friday", "Saturday: 10:00–14:00", "Espresso"),
    ("I'd like to send an unopened bag back, how does that work", "Returns within 30", "Sorry"),
    ("what number can I ring you on", PHONE, "Espresso"),
    ("how much does the decaf cost", "Decaf Beans: €13.90.", "Espresso"),
    ("I need to speak to a human being", "a person will answer you here", "Espresso"),
    ("when does my coffee club renew?", "I can't find a subscription of yours", "ORD-"),
    ("how can i change the card for my membership", "I can't find a subscription", "ORD-"),
    # Stopping a subscription's payments or deliveries, not the payment reminders.
    ("stop charging me", "I can't find a subscription of yours", "payment reminders"),
    ("stop sending me coffee", "I can't find a subscription of yours", "payment reminders"),
    ("why do u keep charging me stop", "I can't find a subscription", "payment reminders"),
]


def new_customer() -> str:
    return str(next(_customers))


def buttons_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, title) of a message's reply buttons, or of its list rows."""
    interactive = message.get("interactive") or {}
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
    rows = [row for section in action.get("sections", []) for row in section["rows"]]
    return [(row["id"], row["title"]) for row in rows]


@pytest.fixture(scope="module")
def inbox() -> Iterator[ShopInbox]:
    """The shop's hand-over webhook receiver (it checks each event's signature)."""
    server = ShopInbox(HANDOVER_SECRET, OPERATOR_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bot(
    graph_api: GraphApiEmulator,
    stripe_api: StripeEmulator,
    inbox: ShopInbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveBot]:
    env = {
        "WHATSAPP_ACCESS_TOKEN": graph_api.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": graph_api.phone_number_id,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_API_BASE": graph_api.base_url,
        "STRIPE_SECRET_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WHATSAPP_NOTIFICATION_TEMPLATE": "order_update",  # the staff alert: no window
        "HANDOVER_WEBHOOK_URL": inbox.url,
        "HANDOVER_WEBHOOK_SECRET": HANDOVER_SECRET,
        "HANDOVER_STAFF_WA_ID": STAFF,
        "HANDOVER_TIMEOUT_MINUTES": str(TIMEOUT_MINUTES),
        "OPERATOR_API_TOKEN": OPERATOR_TOKEN,
        "REPLAY_INTERVAL_SECONDS": "1",  # the hand-over sweep: `make chat ARGS=resume` acts soon
    }
    workdir: Path = tmp_path_factory.mktemp("faq")
    live = start_bot(workdir, env, {"connectors.whatsapp.channel.WhatsAppInput": {}})
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chat(bot: LiveBot, graph_api: GraphApiEmulator) -> Chat:
    return Chat(bot, graph_api, APP_SECRET)


@pytest.fixture(scope="module")
def staff(bot: LiveBot, inbox: ShopInbox) -> Staff:
    settings = {"HANDOVER_WEBHOOK_URL": inbox.url, "HANDOVER_WEBHOOK_SECRET": HANDOVER_SECRET}
    return Staff(bot, inbox, OPERATOR_TOKEN, bot.logs[0].parent / "bot.db", settings)


def ask(chat: Chat, customer: str, text: str) -> dict[str, Any]:
    """The bot's one reply to `text`."""
    before = len(chat.messages(customer))
    chat.say(customer, text)
    return chat.next_reply(customer, before)


def tap(chat: Chat, customer: str, payload: str, title: str) -> dict[str, Any]:
    before = len(chat.messages(customer))
    chat.tap(customer, payload, title)
    return chat.next_reply(customer, before)


@pytest.mark.parametrize(("question", "said", "not_said"), QUOTED_IN_THE_ISSUE + OTHER_PHRASINGS)
def test_a_shopper_question_gets_its_answer(
    chat: Chat, question: str, said: str, not_said: str
) -> None:
    answer = text_of(ask(chat, new_customer(), question))
    assert said in answer and not_said not in answer, answer


def test_a_product_answer_orders_that_product_with_one_tap(
    chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    answer = ask(chat, customer, "is the sencha in stock?")
    assert text_of(answer).startswith("Sencha Green Tea: €8.90.")
    ((payload, title),) = buttons_of(answer)
    summary = tap(chat, customer, payload, title)
    assert "1 × Sencha Green Tea — €8.90" in text_of(summary)
    link = tap(chat, customer, "/affirm", "Yes, pay now")
    assert link["interactive"]["type"] == "cta_url"


def test_a_question_before_the_yes_keeps_the_purchase_going(chat: Chat) -> None:
    customer = new_customer()
    summary = ask(chat, customer, "I'd like to order espresso beans")
    assert "Shall I send you the payment link?" in text_of(summary)
    answer = ask(chat, customer, "how long does delivery to belgium take")
    assert text_of(answer).startswith("Yes, we deliver to Belgium")
    assert "shall I send you the payment link?" in text_of(answer)
    link = tap(chat, customer, "/affirm", "Yes, pay now")
    assert link["interactive"]["type"] == "cta_url"


def test_a_subscriber_cancelling_gets_subscription_help_not_an_order_cancelled(
    bot: LiveBot, chat: Chat, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    ask(chat, customer, "sign me up for the coffee club")
    link = tap(chat, customer, "/affirm", "Yes, pay now")
    session = chat.pay(customer, link, stripe_api, WEBHOOK_SECRET)
    order_id = session["metadata"]["order_id"]
    assert "is confirmed" in text_of(chat.next_reply(customer, 2))
    status = text_of(ask(chat, customer, "is my subscription still active?"))
    assert f"Your Coffee Club Monthly subscription started with order {order_id}" in status
    cancel = ask(chat, customer, "I want to cancel my subscription")
    assert text_of(cancel).startswith(f"Your Coffee Club Monthly subscription (order {order_id})")
    # The customer portal, opened on cancelling this subscription: the customer decides there.
    parameters = cancel["interactive"]["action"]["parameters"]
    assert parameters["display_text"] == "Cancel subscription"
    assert "/portal/bps_test_" in parameters["url"]
    assert stripe_api.sessions[session["id"]]["status"] == "complete"  # nothing was cancelled
    assert session["subscription"] not in stripe_api.cancelled_subscriptions


def test_two_fallbacks_in_a_row_offer_a_person(chat: Chat) -> None:
    customer = new_customer()
    first = ask(chat, customer, "zxqv blorp")
    assert text_of(first) == "Sorry, I'm not sure what you mean. Is it one of these?"
    assert len(buttons_of(first)) == 3
    second = ask(chat, customer, "qwpfk vvv")
    assert "Would you like to talk to a person?" in text_of(second)
    assert buttons_of(second)[0] == ("/talk_to_person", "Talk to a person")
    handover = tap(chat, customer, "/talk_to_person", "Talk to a person")
    assert "a person will answer you here" in text_of(handover)


def test_an_unsure_guess_is_offered_as_a_button(chat: Chat) -> None:
    customer = new_customer()
    options = ask(chat, customer, "my dripper came cracked")
    assert text_of(options) == "Sorry, I'm not sure what you mean. Is it one of these?"
    assert ("/complain", "Report a problem") in buttons_of(options)
    assert text_of(tap(chat, customer, "/complain", "Report a problem")).startswith("I'm sorry")


def test_a_complaint_then_yes_gives_the_way_to_a_person(chat: Chat) -> None:
    customer = new_customer()
    complaint = ask(chat, customer, "you sent me the wrong coffee, not happy")
    assert text_of(complaint).startswith("I'm sorry about that.")
    assert buttons_of(complaint)[0] == ("/talk_to_person", "Talk to a person")
    assert "a person will answer you here" in text_of(ask(chat, customer, "yes"))


def hand_over(chat: Chat, staff: Staff, customer: str) -> str:
    """The customer asks for a person; returns the hand-over's reference once the shop knows."""
    assert "a person will answer you here" in text_of(ask(chat, customer, "can I talk to a person"))
    ref = staff.handover_of(customer).ref
    staff.events(ref, "handover.started")
    return ref


def test_a_person_takes_over_the_bot_is_quiet_and_the_shop_is_told_once(
    chat: Chat, staff: Staff, graph_api: GraphApiEmulator
) -> None:
    customer = new_customer()
    ref = hand_over(chat, staff, customer)
    before = len(chat.messages(customer))
    asked = meta.text(customer, "hello? my order never came")
    for _ in range(2):  # Meta delivers it twice
        assert chat.post(meta.notification([asked], [meta.contact(customer)])).ok
    chat.say(customer, "I want to talk to a person")  # again: no second hand-over
    staff.events(ref, "handover.message", count=2)
    chat.idle()
    assert len(chat.messages(customer)) == before  # the bot said nothing
    assert staff.recorded(asked["id"], customer)
    forwarded = [e["message"]["text"] for e in staff.inbox.received("handover.message", ref)]
    assert forwarded == ["hello? my order never came", "I want to talk to a person"]
    assert all(staff.inbox.deliveries[e["id"]] == 1 for e in staff.inbox.received(ref=ref))
    (started,) = staff.inbox.received("handover.started", ref)
    assert started["transcript"] == ["can I talk to a person"] and staff.inbox.refused == 0
    (alert,) = [m for m in graph_api.messages() if m.get("to") == STAFF and ref in str(m)]
    assert alert["type"] == "template" and customer not in str(alert)

    assert staff.call("/" + ref + "/reply", {"text": "Hi, Ben from the shop."}).status_code == 202
    assert text_of(chat.next_reply(customer, before)) == "Hi, Ben from the shop."
    assert staff.call("", token="wrong-token-0123456789").status_code == 401
    assert staff.call(f"/{ref}/reply", b"{oops").json()["error"].startswith("the body must be")
    assert staff.call("/H-2345ABCD/resume").status_code == 404
    assert ref in [h["ref"] for h in staff.call("").json()["handovers"]]
    assert staff.call(f"/{ref}/resume").json() == {"ref": ref, "status": "resumed"}
    assert "team has handed you back to me" in text_of(chat.next_reply(customer, before + 1))
    assert staff.events(ref, "handover.ended")[0]["ended_by"] == "staff"
    assert staff.call(f"/{ref}/reply", {"text": "one more thing"}).status_code == 409
    assert "Monday–Friday" in text_of(ask(chat, customer, "what are your opening hours?"))


def test_a_payment_during_a_hand_over_is_still_confirmed(
    bot: LiveBot, chat: Chat, staff: Staff, stripe_api: StripeEmulator
) -> None:
    customer = new_customer()
    ask(chat, customer, "I'd like to order espresso beans")
    link = tap(chat, customer, "/affirm", "Yes, pay now")
    ref = hand_over(chat, staff, customer)
    before = len(chat.messages(customer))
    chat.pay(customer, link, stripe_api, WEBHOOK_SECRET)
    assert "is confirmed" in text_of(chat.next_reply(customer, before))
    chat.say(customer, "thanks! and the person?")
    staff.events(ref, "handover.message")
    chat.idle()
    assert len(chat.messages(customer)) == before + 1  # still handed over: no bot answer


def test_a_hand_over_nobody_answers_comes_back_to_the_bot(chat: Chat, staff: Staff) -> None:
    customer = new_customer()
    ref = hand_over(chat, staff, customer)
    staff.pass_time(ref, TIMEOUT_MINUTES + 1)
    before = len(chat.messages(customer))
    chat.say(customer, "what are your opening hours?")
    replies = " | ".join(text_of(m) for m in chat.wait(customer, before + 2)[before:])
    assert "Nobody from the" in replies and "Monday–Friday" in replies, replies  # back, then hours
    assert staff.events(ref, "handover.ended")[0]["ended_by"] == "timeout"


def test_staff_answer_and_hand_back_with_make_chat(chat: Chat, staff: Staff) -> None:
    """`make chat` works on the database: the running bot's outbox sends the reply, its
    sweep hands the customer back (no message from them needed)."""
    customer = new_customer()
    ref = hand_over(chat, staff, customer)
    listed = staff.chat_cli("list").stdout
    assert ref in listed and customer not in listed
    before = len(chat.messages(customer))
    assert staff.chat_cli("reply", ref, "Hi,", "Ben", "here.").returncode == 0
    assert text_of(chat.next_reply(customer, before)) == "Hi, Ben here."
    assert staff.chat_cli("resume", ref).returncode == 0
    assert "team has handed you back to me" in text_of(chat.next_reply(customer, before + 1))
    assert staff.chat_cli("resume", ref).returncode == 1
