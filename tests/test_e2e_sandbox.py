"""End to end through the sandbox: the real `rasa run` and `rasa run actions` with the trained
model, the Graph API and Stripe emulators, and customers driven through the chat simulator's
API and the emulated Checkout page — each scenario checks exactly what the customer sees."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from tests.sandbox_client import (
    Customer,
    Sandbox,
    checkout,
    kind,
    link_of,
    shown,
)

GREETING = (
    "Hi! Welcome to Bean & Leaf. I can show you the catalog, take an order or check on one. "
    "What would you like?"
)
ADDRESS = {"name": "Ann Example", "street": "Main St 1", "postal_code": "1000", "city": "Town"}
FLOW_PURCHASE = ["interactive:button", "interactive:flow", "interactive:cta_url", "text"]
TEXT_PURCHASE = ["interactive:button", "interactive:cta_url", "text"]
SETTLE_SECONDS = 2.0  # how long a scenario waits to be sure nothing more arrives


def seen(customer: Customer, settle: float = SETTLE_SECONDS) -> list[tuple[str, str]]:
    """(kind, first line) of every bot message, after waiting for stragglers."""
    messages = customer.wait(0, settle=settle)
    return [(kind(m), shown(m).splitlines()[0]) for m in messages]


def order_with_flow(
    customer: Customer, product: str = "espresso-beans", quantity: str = "2"
) -> dict[str, Any]:
    """greet → 'Place an order' → the order Flow, screen by screen → the payment link."""
    customer.say("hi")
    greeting = customer.next(0)
    customer.tap(greeting, "Place an order")
    flow = customer.next(1)
    assert kind(flow) == "interactive:flow"
    assert customer.open_flow(flow)["screen"] == "PRODUCT"
    assert customer.submit(flow, {"product": product})["screen"] == "QUANTITY"
    after_quantity = customer.submit(flow, {"quantity": quantity})
    if after_quantity["screen"] == "DELIVERY":
        after_quantity = customer.submit(flow, ADDRESS)
    assert after_quantity["screen"] == "SUMMARY"
    assert customer.submit(flow, {})["closed"]
    return customer.next(2)


def order_by_text(customer: Customer, text: str) -> dict[str, Any]:
    """'I'd like …' → the order summary → 'Yes, pay now' → the payment link."""
    customer.say(text)
    summary = customer.next(0)
    assert "Shall I send you the payment link?" in shown(summary)
    customer.tap(summary, "Yes, pay now")
    return customer.next(1)


def order_id(message: dict[str, Any]) -> str:
    match = re.search(r"ORD-[0-9A-Z]+", shown(message))
    assert match, shown(message)
    return match.group(0)


def pay_and_see(customer: Customer, url: str, order: str, kinds: list[str]) -> None:
    """Pays at `url`; the customer then has seen messages of exactly `kinds`, the last one
    the only confirmation, of `order`."""
    checkout(url, "pay")
    customer.wait(len(kinds))
    messages = seen(customer)
    assert [k for k, _ in messages] == kinds
    confirmations = [line for _, line in messages if "is confirmed" in line]
    assert confirmations == [f"Payment received, thank you! Order {order} is confirmed:"]
    assert messages[-1][1] == confirmations[0]


def test_greet_order_with_the_flow_pay_one_confirmation(live_sandbox: Sandbox) -> None:
    ann = live_sandbox.customer("Ann")
    link = order_with_flow(ann)
    assert "2 × Espresso Beans — €25.80" in shown(link)
    checkout(link_of(link), "pay", duplicate=True)  # every event delivered twice
    ann.wait(len(FLOW_PURCHASE))
    assert seen(ann) == [
        ("interactive:button", GREETING),
        ("interactive:flow", "Tap below to choose what you'd like. It takes a minute."),
        ("interactive:cta_url", f"Thanks! Your order {order_id(link)}:"),
        ("text", f"Payment received, thank you! Order {order_id(link)} is confirmed:"),
    ]
    # WhatsApp's signed status notifications reached the bot's webhook (answered 2xx).
    deadline = time.monotonic() + 10
    while {m["status"] for m in ann.bot_messages()} != {"read"}:
        assert time.monotonic() < deadline, [m["status"] for m in ann.bot_messages()]
        time.sleep(0.2)


def test_declined_card_then_retry_then_paid(live_sandbox: Sandbox) -> None:
    bob = live_sandbox.customer("Bob")
    link = order_by_text(bob, "I'd like to order green tea")
    declined = checkout(link_of(link), "decline")  # the emulated Stripe page, not the chat
    assert 'id="note">Your card was declined. Try another card.</div>' in declined
    assert 'id="status">open</strong>' in declined  # the session stays open for a retry
    offer = bob.next(2)
    assert "didn't go through" in shown(offer)
    bob.tap(offer, "New payment link")
    second = bob.next(3)
    assert link_of(second) != link_of(link) and order_id(second) == order_id(link)
    kinds = ["interactive:button", "interactive:cta_url", "interactive:button"]
    pay_and_see(bob, link_of(second), order_id(link), [*kinds, "interactive:cta_url", "text"])


def test_expired_link_gets_a_new_one_that_pays(live_sandbox: Sandbox) -> None:
    cat = live_sandbox.customer("Cat")
    link = order_by_text(cat, "I want the gift card")
    checkout(link_of(link), "expire")
    nudge = cat.next(2)
    assert "expired" in shown(nudge) and link_of(nudge) != link_of(link)
    kinds = ["interactive:button", "interactive:cta_url", "interactive:cta_url", "text"]
    pay_and_see(cat, link_of(nudge), order_id(link), kinds)


def test_subscription_renewal_and_cancellation(live_sandbox: Sandbox) -> None:
    dan = live_sandbox.customer("Dan")
    link = order_by_text(dan, "I'd like the coffee club")
    assert "every month" in shown(dan.bot_messages()[0])
    pay_and_see(dan, link_of(link), order_id(link), TEXT_PURCHASE)
    checkout(link_of(link), "renew")
    assert "renewed" in shown(dan.next(3))
    # Stripe does not keep events in order; a month later, the renewal has long been read.
    checkout(link_of(link), "cancel_subscription")
    assert "subscription is cancelled" in shown(dan.next(4))
    assert [k for k, _ in seen(dan)] == [*TEXT_PURCHASE, "text", "text"]


def test_status_question_before_and_after_paying(live_sandbox: Sandbox) -> None:
    eve = live_sandbox.customer("Eve")
    link = order_by_text(eve, "I'd like to order decaf")
    eve.say("where is my order?")
    assert "waiting for your payment" in shown(eve.next(2))
    pay_and_see(eve, link_of(link), order_id(link), [*TEXT_PURCHASE[:2], "text", "text"])
    eve.say("where is my order?")
    assert "paid" in shown(eve.next(4))
    assert len(seen(eve)) == 5


def test_cancel_before_paying(live_sandbox: Sandbox) -> None:
    fay = live_sandbox.customer("Fay")
    fay.say("what do you sell?")
    catalog = fay.next(0)
    assert kind(catalog) == "interactive:list" and "Here's what we have" in shown(catalog)
    fay.tap(catalog, "Sencha Green Tea")  # a list row
    summary = fay.next(1)
    assert "Sencha Green Tea" in shown(summary)
    fay.tap(summary, "Yes, pay now")
    link = fay.next(2)
    fay.say("please cancel my order")
    question = fay.next(3)
    assert "Cancel order" in shown(question)
    fay.tap(question, "Yes, cancel it")
    assert "is cancelled" in shown(fay.next(4))
    # The bot expired the session at Stripe, which sends checkout.session.expired: no message.
    assert len(seen(fay, settle=3.0)) == 5
    page = checkout(link_of(link), "pay")
    assert "This Checkout Session is expired." in page
    assert len(seen(fay)) == 5


def test_two_customers_ordering_at_once(live_sandbox: Sandbox) -> None:
    customers = [live_sandbox.customer("Gus"), live_sandbox.customer("Hal")]
    links: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def buy(customer: Customer, product: str) -> None:
        try:
            link = order_with_flow(customer, product, "1")
            links[customer.wa_id] = link
            pay_and_see(customer, link_of(link), order_id(link), FLOW_PURCHASE)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [
        threading.Thread(target=buy, args=(customers[0], "espresso-beans")),
        threading.Thread(target=buy, args=(customers[1], "green-tea")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len({order_id(link) for link in links.values()}) == 2


def test_every_signed_webhook_the_emulators_sent_was_accepted(live_sandbox: Sandbox) -> None:
    """Runs after the scenarios (whichever ran): the bot verified every Stripe-Signature and
    X-Hub-Signature-256 the emulators made and answered 2xx at once (no retry was needed)."""
    customer = live_sandbox.customer("Ivy")
    link = order_by_text(customer, "I'd like to order decaf")
    checkout(link_of(link), "pay")
    customer.wait(3, settle=SETTLE_SECONDS)
    events = list(live_sandbox.emulators.stripe.deliveries)
    assert "checkout.session.completed" in {d.kind for d in events}
    assert {d.status for d in events} == {200}
    statuses = list(live_sandbox.emulators.graph.deliveries)
    assert {d.kind for d in statuses} == {"status sent", "status delivered", "status read"}
    assert {d.status for d in statuses} == {200}
