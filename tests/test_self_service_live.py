"""After the payment, through the sandbox's real servers (the bot, the Graph API and Stripe
emulators): the confirmation carries Stripe's receipt link, and it opens; a subscriber's
"cancel my subscription", "change my card" and "update my plan" each yield a customer
portal link opening on that task, and what the customer does there comes back as Stripe's
event and one message."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox.stripe_api import StripeEmulator
from sandbox.webhooks import Delivery
from tests.support.sandbox_client import Customer, Sandbox, checkout, kind, link_of, shown

pytestmark = pytest.mark.live  # every test here talks to the running bot

DELETED, UPDATED = "customer.subscription.deleted", "customer.subscription.updated"


def test_a_paid_orders_confirmation_carries_a_working_receipt_link(
    live_sandbox: Sandbox,
) -> None:
    fay = live_sandbox.customer("Fay")
    fay.say("I'd like to order decaf")
    summary = fay.next(0)
    fay.tap(summary, "Yes, pay now")
    checkout(link_of(fay.next(1)), "pay")
    confirmation = shown(fay.next(2))
    assert "is confirmed" in confirmation
    found = re.search(r"^Receipt: (\S+)$", confirmation, re.MULTILINE)
    assert found, confirmation
    receipt = requests.get(found.group(1), timeout=5)
    assert receipt.status_code == 200 and "Paid" in receipt.text


def delivered(stripe: StripeEmulator, event_type: str) -> list[Delivery]:
    """The events of `event_type` the emulator delivered so far."""
    return [d for d in stripe.deliveries if d.kind == event_type]


def subscribe(customer: Customer) -> None:
    """The customer orders the Coffee Club by text and pays its link."""
    customer.say("I'd like the coffee club")
    customer.tap(customer.next(0), "Yes, pay now")
    checkout(link_of(customer.next(1)), "pay")
    assert "is confirmed" in shown(customer.next(2))


def test_a_subscriber_cancels_through_the_portal_link_and_hears_it_once(
    live_sandbox: Sandbox,
) -> None:
    gus = live_sandbox.customer("Gus")
    subscribe(gus)
    gus.say("pls cancel my subscription")
    portal = gus.next(3)
    assert kind(portal) == "interactive:cta_url", shown(portal)
    assert "Tap below to cancel it on Stripe's secure page." in shown(portal)
    url = link_of(portal)
    stripe = live_sandbox.emulators.stripe
    (session,) = [s for s in stripe.account.portal_sessions.values() if s["url"] == url]
    subscription = session["flow"]["subscription_cancel"]["subscription"]
    deleted_before = len(delivered(stripe, DELETED))
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and subscription in page.text
    cancelled = requests.post(url, data={"outcome": "cancel"}, timeout=5)
    assert cancelled.status_code == 200 and "Your subscription is cancelled." in cancelled.text
    again = requests.post(url, data={"outcome": "cancel"}, timeout=5)  # a second tap
    assert "canceled" in again.text and subscription in stripe.cancelled_subscriptions
    assert "Your subscription is cancelled." in shown(gus.next(4))
    assert len(gus.wait(5, settle=True)) == 5  # told once
    (deleted,) = delivered(stripe, DELETED)[deleted_before:]  # one event, and the bot took it
    assert deleted.status == 200
    gus.say("cancel my subscription")  # it is over: no new portal link
    assert "is cancelled: no further payments are taken." in shown(gus.next(5))


@pytest.mark.parametrize(
    ("asked", "task", "flow", "outcome", "page_note"),
    [
        ("change my card", "change the card it is paid with", "payment_method_update", "card",
         "Your card is updated."),
        ("update my plan", "change its plan", "subscription_update", "plan",
         "Your plan is updated."),
    ],
)  # fmt: skip
def test_a_subscriber_changes_card_or_plan_through_the_portal_link_and_hears_it_once(
    live_sandbox: Sandbox, asked: str, task: str, flow: str, outcome: str, page_note: str
) -> None:
    hal = live_sandbox.customer("Hal")
    subscribe(hal)
    hal.say(asked)
    portal = hal.next(3)
    assert f"Tap below to {task} on Stripe's secure page." in shown(portal)
    url = link_of(portal)
    stripe = live_sandbox.emulators.stripe
    (session,) = [s for s in stripe.account.portal_sessions.values() if s["url"] == url]
    assert session["flow"]["type"] == flow
    (subscription,) = [
        s["subscription"] for s in stripe.sessions.values() if s["customer"] == session["customer"]
    ]
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and subscription in page.text
    assert f'value="{outcome}"' in page.text and 'value="cancel"' not in page.text
    updated_before = len(delivered(stripe, UPDATED))
    changed = requests.post(url, data={"outcome": outcome}, timeout=5)
    assert changed.status_code == 200 and page_note in changed.text
    assert shown(hal.next(4)) == "Your subscription has been updated."
    assert len(hal.wait(5, settle=True)) == 5  # told once
    (updated,) = delivered(stripe, UPDATED)[updated_before:]
    assert updated.status == 200
