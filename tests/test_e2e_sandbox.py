"""End to end through the sandbox: the real `rasa run` and `rasa run actions` with the trained
model, the Graph API and Stripe emulators, and customers driven through the chat simulator's
API and the emulated Checkout page — each scenario checks exactly what the customer sees."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
import requests

from sandbox.stripe_api import StripeEmulator
from tests.support.sandbox_client import (
    Customer,
    Sandbox,
    checkout,
    kind,
    link_of,
    shown,
)

pytestmark = pytest.mark.live  # every test here talks to the running bot

GREETING = (
    "Hi! Welcome to Bean & Leaf. I can show you the catalog, take an order or check on one. "
    "What would you like?"
)
ADDRESS = {
    "name": "Ann Example",
    "street": "Main St 1",
    "postal_code": "1000",
    "city": "Town",
    "country": "DE",
}
FLOW_PURCHASE = ["interactive:button", "interactive:flow", "interactive:cta_url", "text"]
TEXT_PURCHASE = ["interactive:button", "interactive:cta_url", "text"]


def seen(customer: Customer) -> list[tuple[str, str]]:
    """(kind, first line) of every bot message, once the sandbox is idle (no stragglers)."""
    messages = customer.wait(0, settle=True)
    return [(kind(m), shown(m).splitlines()[0]) for m in messages]


def fill_cart(
    customer: Customer,
    flow: dict[str, Any],
    lines: list[tuple[str, str]],
    address: dict[str, str] = ADDRESS,
) -> dict[str, Any]:
    """Opens the order Flow, puts `lines` (product, quantity; a known product changes its
    quantity, "0" removes it) in the cart, checks out with the last one, gives `address`
    when asked; returns the summary screen."""
    screen = customer.open_flow(flow)
    assert screen["screen"] == "PRODUCT"
    *first, (product, quantity) = lines
    for chosen, how_many in first:
        screen = customer.submit(flow, {"product": chosen, "quantity": how_many, "then": "add"})
        assert screen["screen"] == "PRODUCT" and not screen["error_message"], screen
    screen = customer.submit(flow, {"product": product, "quantity": quantity, "then": "checkout"})
    if screen["screen"] == "DELIVERY":
        screen = customer.submit(flow, address)
    assert screen["screen"] == "SUMMARY", screen
    return screen


def order_with_flow(
    customer: Customer, product: str = "espresso-beans", quantity: str = "2"
) -> dict[str, Any]:
    """greet → 'Place an order' → the order Flow, screen by screen → the payment link."""
    customer.say("hi")
    greeting = customer.next(0)
    customer.tap(greeting, "Place an order")
    flow = customer.next(1)
    assert kind(flow) == "interactive:flow"
    fill_cart(customer, flow, [(product, quantity)])
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


def test_a_three_product_cart_from_the_flow_is_one_session_and_one_confirmation(
    live_sandbox: Sandbox,
) -> None:
    lea = live_sandbox.customer("Lea")
    lea.say("hi")
    lea.tap(lea.next(0), "Place an order")
    flow = lea.next(1)
    cart = [
        ("espresso-beans", "2"),
        ("decaf-beans", "1"),
        ("filter-coffee", "1"),
        ("espresso-beans", "3"),  # changed
        ("decaf-beans", "0"),  # removed
        ("green-tea", "2"),  # and checked out
    ]
    lines = [
        "3 × Espresso Beans — €38.70",
        "1 × Filter Coffee — €11.50",
        "2 × Sencha Green Tea — €17.80",
        "Delivery to Austria — €7.90",
    ]
    summary = fill_cart(lea, flow, cart, {**ADDRESS, "country": "AT"})
    texts = [c["text"] for c in summary["components"] if c["type"] == "text"]
    assert texts[1].splitlines()[:4] == lines
    assert texts[2] == "Total: €75.90"
    assert lea.submit(flow, {})["closed"]
    link = lea.next(2)
    order = order_id(link)
    assert "\n".join([*lines, "Total: €75.90"]) in shown(link)

    stripe = live_sandbox.emulators.stripe
    (created,) = [
        r
        for r in stripe.requests_to("POST", "/v1/checkout/sessions")
        if r.params["client_reference_id"] == order
    ]
    assert created.params["line_items"] == [
        {"price": "price_1QShopEspresso250", "quantity": "3"},
        {"price": "price_1QShopFilter250", "quantity": "1"},
        {"price": "price_1QShopSencha100", "quantity": "2"},
    ]
    (option,) = created.params["shipping_options"]
    assert option["shipping_rate_data"]["fixed_amount"] == {"amount": "790", "currency": "eur"}
    assert created.params["shipping_address_collection"] == {"allowed_countries": ["AT"]}
    session = stripe.sessions[session_of(link)]
    assert (session["amount_subtotal"], session["amount_total"]) == (6800, 7590)

    pay_and_see(lea, link_of(link), order, FLOW_PURCHASE)
    confirmation = shown(lea.bot_messages()[3])
    assert all(line in confirmation for line in lines[:3]), confirmation


def test_two_products_typed_with_quantities_one_session_with_shipping_one_confirmation(
    live_sandbox: Sandbox,
) -> None:
    fay = live_sandbox.customer("Fay")
    link = order_by_text(fay, "hi can i get one espreso and 2 bags of filter cofee")
    order = order_id(link)
    lines = "1 × Espresso Beans — €12.90\n2 × Filter Coffee — €23.00\nDelivery to Germany — €4.90"
    assert f"{lines}\nTotal: €40.80" in shown(fay.bot_messages()[0])  # what was understood
    stripe = live_sandbox.emulators.stripe
    (created,) = [
        r
        for r in stripe.requests_to("POST", "/v1/checkout/sessions")
        if r.params["client_reference_id"] == order
    ]
    assert created.params["line_items"] == [
        {"price": "price_1QShopEspresso250", "quantity": "1"},
        {"price": "price_1QShopFilter250", "quantity": "2"},
    ]
    (option,) = created.params["shipping_options"]
    assert option["shipping_rate_data"]["fixed_amount"] == {"amount": "490", "currency": "eur"}
    assert created.params["shipping_address_collection"] == {"allowed_countries": ["DE"]}
    session = stripe.sessions[session_of(link)]
    assert (session["amount_subtotal"], session["amount_total"]) == (3590, 4080)
    assert session["total_details"]["amount_shipping"] == 490
    pay_and_see(fay, link_of(link), order, TEXT_PURCHASE)
    charge = "ch_test_" + str(session["payment_intent"]).rsplit("_", 1)[-1]
    assert shown(fay.bot_messages()[-1]) == (
        f"Payment received, thank you! Order {order} is confirmed:\n{lines}\nPaid: €40.80\n"
        f"Receipt: {stripe.base_url}/receipts/{charge}"
    )


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


def test_expired_link_gets_its_recovery_link_that_pays(live_sandbox: Sandbox) -> None:
    cat = live_sandbox.customer("Cat")
    link = order_by_text(cat, "I want the gift card")
    checkout(link_of(link), "expire", duplicate=True)  # the expiry delivered twice
    nudge = cat.next(2)
    assert "expired" in shown(nudge) and "Reply STOP" in shown(nudge)
    assert link_of(nudge) == link_of(link).replace("/pay/", "/recover/")  # Stripe's, opened
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
    catalog = fay.next(0)  # the sandbox has a Meta catalog: its multi-product message
    assert kind(catalog) == "interactive:product_list" and "your cart" in shown(catalog)
    fay.send_cart([{"retailer_id": "BL-SEN-100", "quantity": 1}])
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
    assert len(seen(fay)) == 5
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


def session_of(message: dict[str, Any]) -> str:
    """The Checkout Session id of a payment link (the emulator's page is /pay/<id>)."""
    return link_of(message).rsplit("/", 1)[1]


def fill_flow(customer: Customer, flow: dict[str, Any], product: str, quantity: str) -> None:
    """Goes through the order Flow screen by screen and submits it."""
    fill_cart(customer, flow, [(product, quantity)])
    assert customer.submit(flow, {})["closed"]


def refund(stripe: StripeEmulator, payment_intent: str, amount: int | None = None) -> None:
    """The shop refunds through Stripe's API (as from its dashboard)."""
    form = {"payment_intent": payment_intent, **({"amount": str(amount)} if amount else {})}
    answer = requests.post(
        f"{stripe.base_url}/v1/refunds",
        data=form,
        headers={"Authorization": f"Bearer {stripe.api_key}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_two_flows_completed_then_the_first_link_paid_confirms_the_first_order(
    live_sandbox: Sandbox,
) -> None:
    jo = live_sandbox.customer("Jo")
    jo.say("hi")
    greeting = jo.next(0)
    jo.tap(greeting, "Place an order")
    first_flow = jo.next(1)
    jo.tap(greeting, "Place an order")  # a second order form, before filling in the first
    second_flow = jo.next(2)
    fill_flow(jo, first_flow, "espresso-beans", "2")
    first_link = jo.next(3)
    fill_flow(jo, second_flow, "green-tea", "1")
    jo.wait(6)
    first = order_id(first_link)
    stripe = live_sandbox.emulators.stripe
    assert stripe.sessions[session_of(first_link)]["status"] == "expired"  # its link stopped
    stripe.complete_late(session_of(first_link))  # paid on the page opened before
    jo.wait(7)
    messages = seen(jo)
    assert messages[4:] == [
        (
            "text",
            f"Your earlier order {first} wasn't paid, so I've cancelled it and its "
            "payment link no longer works.",
        ),
        ("interactive:cta_url", f"Thanks! Your order {order_id(jo.bot_messages()[5])}:"),
        ("text", f"Payment received, thank you! Order {first} is confirmed:"),
    ]
    assert "2 × Espresso Beans — €25.80" in shown(jo.bot_messages()[6])


def test_a_decline_a_new_link_and_both_links_paid_is_one_confirmation_and_one_refund(
    live_sandbox: Sandbox,
) -> None:
    kim = live_sandbox.customer("Kim")
    link = order_by_text(kim, "I'd like to order green tea")
    checkout(link_of(link), "decline")
    kim.tap(kim.next(2), "New payment link")
    second = kim.next(3)
    stripe = live_sandbox.emulators.stripe
    old, new = session_of(link), session_of(second)
    assert stripe.sessions[old]["status"] == "expired"  # one live link per order
    checkout(link_of(second), "pay")
    kim.wait(5)
    stripe.complete_late(old)  # the old page, still open in another tab, paid too
    kim.wait(6)
    messages = seen(kim)
    order = order_id(link)
    assert [line for _, line in messages if "is confirmed" in line] == [
        f"Payment received, thank you! Order {order} is confirmed:"
    ]
    (told,) = [line for _, line in messages if "charged twice" in line]
    assert told == (
        f"You were charged twice for order {order}, so we refunded the second payment of "
        "€13.80. It can take 5-10 days to show on your statement."  # €8.90 + €4.90 delivery
    )
    (refunded,) = stripe.refunded_of(stripe.sessions[old]["payment_intent"])
    assert refunded["amount"] == stripe.sessions[old]["amount_total"]
    assert stripe.refunded_of(stripe.sessions[new]["payment_intent"]) == []
    assert len(messages) == 6  # the refund's own charge.refunded is not announced again


def test_a_partial_refund_then_the_rest(live_sandbox: Sandbox) -> None:
    lee = live_sandbox.customer("Lee")
    link = order_by_text(lee, "I'd like to order decaf")
    pay_and_see(lee, link_of(link), order_id(link), TEXT_PURCHASE)
    stripe = live_sandbox.emulators.stripe
    session = stripe.sessions[session_of(link)]
    order = order_id(link)
    refund(stripe, session["payment_intent"], 100)
    assert shown(lee.next(3)).startswith(f"We've refunded €1.00 for order {order}.")
    lee.say("where is my order?")
    assert shown(lee.next(4)).startswith(f"Order {order}: partly refunded (€1.00 so far).")
    refund(stripe, session["payment_intent"])
    rest = session["amount_total"] - 100
    assert shown(lee.next(5)).startswith(
        f"We've refunded €{rest // 100}.{rest % 100:02d} for order {order}."
    )
    lee.say("where is my order?")
    assert shown(lee.next(6)).startswith(f"Order {order}: refunded.")
    assert len(seen(lee)) == 7


PANEL = {"X-Staff-Panel": "1"}  # what the page sends: no other site can


def staff_panel(live_sandbox: Sandbox, path: str = "", body: Any = None) -> Any:
    """The chat page's staff panel: what the shop's inbox received, or a reply or resume."""
    url = f"{live_sandbox.page}/api/staff{path}"
    answer = (
        requests.post(url, json=body, headers=PANEL, timeout=10)
        if path
        else requests.get(url, timeout=10)
    )
    assert answer.ok, answer.text
    return answer.json()


def test_a_hand_over_shows_on_the_staff_panel_and_staff_answer(live_sandbox: Sandbox) -> None:
    kim = live_sandbox.customer("Kim")
    kim.say("can I speak to a person please")
    assert "a person will answer you here" in shown(kim.next(0))
    kim.say("my grinder makes a noise")  # to the shop, not the bot
    deadline = time.monotonic() + 30
    while not (said := [e for e in staff_panel(live_sandbox)["events"] if "message" in e]):
        assert time.monotonic() < deadline, "nothing forwarded to the shop"
        time.sleep(0.2)
    ref = said[-1]["handover"]["ref"]
    assert said[-1]["message"]["text"] == "my grinder makes a noise" and len(seen(kim)) == 1
    started = [e for e in staff_panel(live_sandbox)["events"] if e["type"] == "handover.started"]
    assert [e["transcript"] for e in started if e["handover"]["ref"] == ref] == [
        ["can I speak to a person please"]
    ]
    assert staff_panel(live_sandbox, f"/{ref}/reply", {"text": "Hi Kim, Ben here."})["status"] == (
        "queued"
    )
    assert shown(kim.next(1)) == "Hi Kim, Ben here."
    staff_panel(live_sandbox, f"/{ref}/resume", {})
    assert "handed you back to me" in shown(kim.next(2))
    assert live_sandbox.emulators.inbox.refused == 0  # every event's signature held


def test_no_recovery_message_while_a_person_has_the_conversation(live_sandbox: Sandbox) -> None:
    """The customer's replies go to the shop during a hand-over, so the "reply STOP" of a
    recovery message could never reach the bot: none goes out while a person has it."""
    max_ = live_sandbox.customer("Max")
    link = order_by_text(max_, "I want the gift card")
    max_.say("can I speak to a person please")
    assert "a person will answer you here" in shown(max_.next(2))
    checkout(link_of(link), "expire")
    assert len(max_.wait(3, settle=True)) == 3  # the link expired: nothing said
    ref = [e for e in staff_panel(live_sandbox)["events"] if e["type"] == "handover.started"]
    staff_panel(live_sandbox, f"/{ref[-1]['handover']['ref']}/resume", {})
    assert "handed you back to me" in shown(max_.next(3))
    max_.say("where is my order?")
    assert "expired" in shown(max_.next(4))


def test_every_signed_webhook_the_emulators_sent_was_accepted(live_sandbox: Sandbox) -> None:
    """Runs after the scenarios (whichever ran): the bot verified every Stripe-Signature and
    X-Hub-Signature-256 the emulators made and answered 2xx at once (no retry was needed)."""
    customer = live_sandbox.customer("Ivy")
    link = order_by_text(customer, "I'd like to order decaf")
    checkout(link_of(link), "pay")
    customer.wait(3, settle=True)
    events = list(live_sandbox.emulators.stripe.deliveries)
    assert "checkout.session.completed" in {d.kind for d in events}
    assert {d.status for d in events} == {200}
    statuses = list(live_sandbox.emulators.graph.deliveries)
    assert {d.kind for d in statuses} == {"status sent", "status delivered", "status read"}
    assert {d.status for d in statuses} == {200}
