"""Subscription self-service through Stripe's customer portal: the Checkout Session makes or
reuses one Stripe Customer per WhatsApp customer, the paid session's Customer is remembered,
and "cancel my subscription" / "change my card" / "update my plan" open a portal session on
that very task (its `flow_data`), sent as a button; without a known Customer, or when Stripe
refuses, the customer hears how else to do it. The emulator refuses what Stripe refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import stripe
from rasa_sdk import Tracker

from actions.orders.model import Order
from actions.payment_confirmation_actions import ActionPaymentSucceeded
from actions.payment_event_actions import ActionSubscriptionEvent
from actions.payments.checkout_links import create_payment_link
from actions.payments.client import stripe_client
from actions.payments.portal import return_url
from actions.privacy_actions import ActionAskEraseData
from actions.subscription_help import ActionSubscriptionHelp
from connectors.stripe.events import EventIntent, map_event
from sandbox.stripe_api import StripeApiError, StripeEmulator, portal
from sandbox.stripe_api.customers import new_customer
from shop_contract.catalog import Catalog
from shop_contract.intents import SUBSCRIPTION_ENDING, SUBSCRIPTION_UPDATED
from shop_contract.shop import default_shop
from tests.conftest import CUSTOMER, make_tracker, run_action, slot_updates
from tests.support.stripe_checkout import (
    clear_payment_caches,
    paid_event,
    run,
    run_stripe_action,
)

PORTAL = "/v1/billing_portal/sessions"


def subscribed(fake: StripeEmulator, catalog: Catalog) -> tuple[Order, dict[str, Any]]:
    """A Coffee Club order paid on the emulator, confirmed by the action; the order as
    confirmed and the slots the confirmation set (the Stripe Customer among them)."""
    order = Order.start(catalog, {"coffee-club": 1})
    link = run(create_payment_link(order, CUSTOMER))
    order = order.with_link(link.session_id, link.url)
    fake.complete(link.session_id)
    _, events = run_stripe_action(ActionPaymentSucceeded(), paid_event(order, link.session_id))
    slots = {**order.to_slots(), **slot_updates(events)}
    paid = Order.from_slots(slots)
    assert paid is not None
    return paid, slots


def ask(intent: str, slots: dict[str, Any], channel: str = "whatsapp") -> dict[str, Any]:
    (message,), _ = run_stripe_action(
        ActionSubscriptionHelp(), make_tracker(intent, slots=slots, channel=channel)
    )
    return message


def test_the_paid_sessions_customer_is_remembered_and_reused_by_the_next_checkout(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    customer = stripe_env.sessions[str(order.checkout_session_id)]["customer"]
    assert customer.startswith("cus_test_") and slots["stripe_customer_id"] == customer
    again = Order.start(catalog, {"espresso-beans": 1})
    run(create_payment_link(again, CUSTOMER, customer))
    first, second = stripe_env.requests_to("POST", "/v1/checkout/sessions")
    assert "customer" not in first.params  # subscription mode: Checkout makes one
    assert second.params["customer"] == customer and "customer_creation" not in second.params


@pytest.mark.parametrize(
    ("intent", "flow", "button"),
    [
        ("subscription_cancel", "subscription_cancel", "Cancel subscription"),
        ("subscription_change_card", "payment_method_update", "Change card"),
        ("subscription_change_plan", "subscription_update", "Change plan"),
    ],
)
def test_each_request_opens_the_portal_on_its_own_flow(
    stripe_env: StripeEmulator, catalog: Catalog, intent: str, flow: str, button: str
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    message = ask(intent, slots)
    parameters = message["custom"]["interactive"]["action"]["parameters"]
    (created,) = stripe_env.requests_to("POST", PORTAL)
    assert created.params["customer"] == slots["stripe_customer_id"]
    assert created.params["return_url"] == "https://wa.me/4915123456789"
    assert created.params["flow_data"]["type"] == flow
    if flow != "payment_method_update":
        assert created.params["flow_data"][flow] == {"subscription": order.subscription}
    (portal,) = stripe_env.account.portal_sessions.values()
    assert parameters == {"display_text": button, "url": portal["url"]}
    assert f"order {order.id}" in message["custom"]["interactive"]["body"]["text"]


def test_off_whatsapp_no_portal_is_opened(stripe_env: StripeEmulator, catalog: Catalog) -> None:
    # The REST channel lets its token holder post as any sender: a portal link (a bearer
    # link to the customer's billing) goes only to the WhatsApp number that paid.
    _, slots = subscribed(stripe_env, catalog)
    message = ask("subscription_cancel", slots, channel="rest")
    assert not stripe_env.requests_to("POST", PORTAL)
    assert "I can't cancel it from this chat, but a person from our team can." in message["text"]
    assert "/portal/" not in str(message)


def test_without_a_known_stripe_customer_a_person_helps(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    slots["order_customer"] = None  # paid before customers were remembered
    slots["orders"] = {order.id: {**order.to_slots(), "order_customer": None}}
    slots["stripe_customer_id"] = None
    message = ask("subscription_cancel", slots)
    assert "I can't cancel it from this chat, but a person from our team can." in message["text"]
    assert message["buttons"] == [{"title": "Talk to a person", "payload": "/talk_to_person"}]
    assert not stripe_env.requests_to("POST", PORTAL)


def test_when_stripe_refuses_the_portal_the_customer_is_told_and_helped(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    _, slots = subscribed(stripe_env, catalog)
    stripe_env.queue_failures(500, 500, 500)  # the request and both retries
    message = ask("subscription_change_card", slots)
    assert "I couldn't open Stripe's page for it just now." in message["text"]
    assert message["buttons"] == [{"title": "Talk to a person", "payload": "/talk_to_person"}]


def test_a_customer_id_typed_or_in_the_slot_never_opens_the_portal(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    own = order.customer
    other = new_customer(stripe_env.account.customers, {})["id"]  # someone else's Customer
    slots["stripe_customer_id"] = other  # not set by remember_customer
    tracker = make_tracker(
        "subscription_cancel",
        entities={"stripe_customer_id": other, "order_customer": other, "customer": other},
        slots=slots,
        channel="whatsapp",
    )
    tracker.latest_message["text"] = f"cancel my subscription, my customer id is {other}"
    run_stripe_action(ActionSubscriptionHelp(), tracker)
    (created,) = stripe_env.requests_to("POST", PORTAL)
    assert own is not None and created.params["customer"] == own != other


def test_erasing_says_what_stays_with_stripe_and_that_the_subscription_goes_on(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    _, slots = subscribed(stripe_env, catalog)
    (message,), _ = run_action(ActionAskEraseData(), make_tracker("erase_my_data", slots=slots))
    assert message["text"].startswith(
        "Note: deleting your data does not cancel your Coffee Club Monthly subscription"
    )
    assert "stay with Stripe" in message["text"] and "hello@beanandleaf.example" in message["text"]
    (plain,), _ = run_action(ActionAskEraseData(), make_tracker("erase_my_data"))
    assert plain["text"].startswith("I can delete everything") and "Note" not in plain["text"]


def portal_request(params: dict[str, Any]) -> stripe.InvalidRequestError:
    """The emulator's refusal of a portal session request."""

    async def create() -> None:
        await stripe_client().v1.billing_portal.sessions.create_async(params=params)  # type: ignore[arg-type]

    with pytest.raises(stripe.InvalidRequestError) as refused:
        run(create())
    assert refused.value.http_status == 400
    return refused.value


def test_the_emulator_refuses_bad_portal_requests_as_stripe_does(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    mine, sub = slots["stripe_customer_id"], order.subscription
    back = "https://wa.me/4915123456789"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"return_url": back}, "customer"),
        ({"customer": "cus_test_nobody", "return_url": back}, "customer"),
        ({"customer": mine}, "return_url"),
        ({"customer": mine, "return_url": "javascript:alert(1)"}, "return_url"),
        (
            {
                "customer": mine,
                "return_url": back,
                "flow_data": {"subscription_cancel": {"subscription": sub}},
            },
            "flow_data[type]",
        ),
        (
            {"customer": mine, "return_url": back, "flow_data": {"type": "subscription_pay"}},
            "flow_data[type]",
        ),
        (
            {"customer": mine, "return_url": back, "flow_data": {"type": "subscription_cancel"}},
            "flow_data[subscription_cancel][subscription]",
        ),
        (
            {
                "customer": mine,
                "return_url": back,
                "flow_data": {"type": "subscription_update", "subscription_update": {}},
            },
            "flow_data[subscription_update][subscription]",
        ),
        (
            {
                "customer": mine,
                "return_url": back,
                "flow_data": {"type": "subscription_cancel", "subscription_cancel": {"sub": sub}},
            },
            "flow_data[subscription_cancel][subscription]",
        ),
        ({"customer": mine, "return_url": back, "flow_data": {"typ": "x"}}, "flow_data[typ]"),
    ]
    for params, param in cases:
        assert portal_request(params).param == param, params
    others = Order.start(catalog, {"coffee-club": 1})
    link = run(create_payment_link(others, "someone-else"))
    stripe_env.complete(link.session_id)
    theirs = stripe_env.sessions[link.session_id]["subscription"]
    refused = portal_request(
        {
            "customer": mine,
            "return_url": back,
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": theirs},
            },
        }
    )
    assert "does not belong to the customer" in str(refused.user_message)
    assert not stripe_env.account.portal_sessions


def test_a_subscription_paid_before_orders_kept_their_customer_opens_as_the_remembered_one(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    # Paid before Order.customer existed: neither the order nor its record names one.
    record = {**order.to_slots(), "order_customer": None}
    legacy = {**slots, "order_customer": None, "orders": {order.id: record}}
    message = ask("subscription_cancel", legacy)
    (created,) = stripe_env.requests_to("POST", PORTAL)
    assert created.params["customer"] == slots["stripe_customer_id"]
    assert created.params["flow_data"]["subscription_cancel"] == {
        "subscription": order.subscription
    }
    (portal,) = stripe_env.account.portal_sessions.values()
    assert message["custom"]["interactive"]["action"]["parameters"]["url"] == portal["url"]


def test_the_emulator_keeps_customers_as_stripe_does(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    async def calls() -> tuple[Any, Any, Any]:
        client = stripe_client()
        made = await client.v1.customers.create_async(params={"metadata": {"shop": "x"}})
        found = await client.v1.customers.retrieve_async(made.id)
        try:
            await client.v1.customers.retrieve_async("cus_test_nobody")
        except stripe.InvalidRequestError as error:
            return made, found, error
        raise AssertionError("an unknown customer was found")

    made, found, missing = run(calls())
    assert made.id.startswith("cus_test_") and found.id == made.id
    assert missing.http_status == 404 and missing.code == "resource_missing"
    order, slots = subscribed(stripe_env, catalog)
    session_id = str(order.checkout_session_id)
    with_customer = retrieve_expanded(session_id, ["customer", "subscription"])
    assert with_customer["customer"]["id"] == slots["stripe_customer_id"]
    assert with_customer["subscription"]["customer"] == slots["stripe_customer_id"]


def retrieve_expanded(session_id: str, expand: list[str]) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        found = await stripe_client().v1.checkout.sessions.retrieve_async(
            session_id, params={"expand": expand}
        )
        return dict(found.to_dict())

    return run(call())


def test_a_new_card_in_the_portal_is_a_subscription_updated_event(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    ask("subscription_change_card", slots)
    (portal_id,) = stripe_env.account.portal_sessions
    (updated,) = portal.portal_act(stripe_env.account, portal_id, "card")
    assert updated["type"] == "customer.subscription.updated"
    subscription = updated["data"]["object"]
    assert subscription["id"] == order.subscription
    assert subscription["metadata"]["order_id"] == order.id  # back to the conversation
    assert subscription["default_payment_method"].startswith("pm_test_")
    (deleted,) = portal.portal_act(stripe_env.account, portal_id, "cancel")
    assert deleted["type"] == "customer.subscription.deleted"
    with pytest.raises(StripeApiError):
        portal.portal_act(stripe_env.account, portal_id, "card")  # cancelled: no new card


def test_a_new_plan_in_the_portal_is_a_subscription_updated_event(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    ask("subscription_change_plan", slots)
    (portal_id,) = stripe_env.account.portal_sessions
    page = requests.get(stripe_env.account.portal_sessions[portal_id]["url"], timeout=5).text
    assert 'value="plan"' in page and 'value="cancel"' not in page
    (updated,) = portal.portal_act(stripe_env.account, portal_id, "plan")
    subscription = updated["data"]["object"]
    assert updated["type"] == "customer.subscription.updated"
    assert subscription["id"] == order.subscription
    assert [item["quantity"] for item in subscription["items"]["data"]] == [2]
    before = updated["data"]["previous_attributes"]["items"]["data"]
    assert [item["quantity"] for item in before] == [1]
    told = map_event(updated)
    assert isinstance(told, EventIntent) and told.intent == SUBSCRIPTION_UPDATED


def cancel_page(stripe_env: StripeEmulator, catalog: Catalog) -> tuple[dict[str, Any], str, str]:
    """A subscriber's "cancel my subscription": their slots, the portal session opened for
    it, and that session's page as the customer's browser gets it."""
    _, slots = subscribed(stripe_env, catalog)
    ask("subscription_cancel", slots)
    (portal_id,) = stripe_env.account.portal_sessions
    page = requests.get(stripe_env.account.portal_sessions[portal_id]["url"], timeout=5).text
    return slots, portal_id, page


def test_cancelling_at_the_period_end_in_the_portal_is_told_as_an_end_not_an_update(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    slots, portal_id, page = cancel_page(stripe_env, catalog)
    assert 'value="cancel_at_period_end"' in page and 'value="cancel"' in page
    (updated,) = portal.portal_act(stripe_env.account, portal_id, "cancel_at_period_end")
    assert updated["type"] == "customer.subscription.updated"
    assert updated["data"]["object"]["cancel_at_period_end"] is True
    told = map_event(updated)  # as the connector maps the webhook's event
    assert isinstance(told, EventIntent) and told.intent == SUBSCRIPTION_ENDING
    berlin = ZoneInfo("Europe/Berlin")  # data/shop.yml's time zone
    ends = datetime.fromtimestamp(updated["data"]["object"]["cancel_at"], tz=berlin)
    tracker = make_tracker(told.intent, entities=told.entities, slots=slots, channel="whatsapp")
    (message,), _ = run_action(ActionSubscriptionEvent(), tracker)
    assert message["text"] == (
        f"Your subscription is cancelled: it ends on {ends.day} {ends:%B %Y} and will not renew."
    )
    # Asked afterwards, the bot says it ends rather than that it renews.
    (answer,), _ = run_action(ActionSubscriptionHelp(), after(tracker, "subscription_status"))
    assert "will not renew" in answer["text"] and "renews it automatically" not in answer["text"]
    (again,), _ = run_stripe_action(ActionSubscriptionHelp(), after(tracker, "subscription_cancel"))
    assert "will not renew" in again["text"]
    assert len(stripe_env.requests_to("POST", PORTAL)) == 1  # no second portal to cancel
    # A later plain update (a new card) does not switch renewal back on…
    card = make_tracker("EXTERNAL_subscription_updated", slots=slots, channel="whatsapp")
    still = after(tracker, "subscription_status")
    still.events = [*tracker.events, *card.events, *still.events[-1:]]
    (ending,), _ = run_action(ActionSubscriptionHelp(), still)
    assert "will not renew" in ending["text"]
    # …only switching the cancellation off does.
    renewing = make_tracker("EXTERNAL_subscription_renewing", slots=slots, channel="whatsapp")
    (resumed,), _ = run_action(ActionSubscriptionEvent(), renewing)
    assert resumed["text"].startswith("Your subscription is no longer cancelled")
    reverted = after(tracker, "subscription_status")
    reverted.events = [*tracker.events, *renewing.events, *reverted.events[-1:]]
    (renews,), _ = run_action(ActionSubscriptionHelp(), reverted)
    assert "renews it automatically" in renews["text"]  # renewal switched back on


def test_the_flexible_billing_modes_period_end_cancel_is_told_as_ending(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    _, portal_id, page = cancel_page(stripe_env, catalog)
    assert 'value="cancel_at_period_end_flexible"' in page
    (updated,) = portal.portal_act(stripe_env.account, portal_id, "cancel_at_period_end_flexible")
    subscription = updated["data"]["object"]
    assert subscription["cancel_at_period_end"] is False and subscription["cancel_at"]
    assert updated["data"]["previous_attributes"] == {"cancel_at": None}
    told = map_event(updated)
    assert isinstance(told, EventIntent) and told.intent == SUBSCRIPTION_ENDING
    assert told.entities["subscription_ends_at"] == subscription["cancel_at"]


def after(earlier: Tracker, intent: str) -> Tracker:
    """A WhatsApp turn asking `intent` after `earlier`'s events."""
    later = make_tracker(intent, slots=dict(earlier.slots), channel="whatsapp")
    later.events = [*earlier.events, *later.events]
    return later


def test_an_event_for_an_order_the_conversation_does_not_hold_is_still_told() -> None:
    # Its record may have been dropped from the `orders` slot: the customer is still told.
    gone = make_tracker(
        "EXTERNAL_subscription_renewal_failed", entities={"order_id": "ORD-GONE1234"}
    )
    (message,), _ = run_action(ActionSubscriptionEvent(), gone)
    assert message["text"].startswith("We couldn't take this month's subscription payment")


def test_without_the_shops_whatsapp_number_the_portal_leads_back_to_the_checkout_page(
    stripe_env: StripeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = default_shop()
    assert return_url(shop) == "https://wa.me/4915123456789"  # contact.whatsapp
    monkeypatch.setenv("CHECKOUT_SUCCESS_URL", "https://shop.example/thanks")
    clear_payment_caches()
    without = replace(shop, contact=replace(shop.contact, whatsapp=None))
    assert return_url(without) == "https://shop.example/thanks"  # never contact.phone


def test_a_subscription_whose_customer_stripe_no_longer_has_is_told_so(
    stripe_env: StripeEmulator, catalog: Catalog
) -> None:
    order, slots = subscribed(stripe_env, catalog)
    del stripe_env.account.customers[str(order.customer)]  # deleted in the Dashboard
    message = ask("subscription_change_card", slots)
    assert "Stripe no longer has the customer record it was paid with." in message["text"]
    assert "just now" not in message["text"]
    assert message["buttons"] == [{"title": "Talk to a person", "payload": "/talk_to_person"}]
