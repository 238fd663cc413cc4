"""The FAQ, product, subscription, hand-over and fallback actions, run as the action server
runs them (their texts are checked against data/shop.yml in test_shop_answers.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker

from actions import subscription_help
from actions.fallback import OFFERS, ActionFallbackOptions, ActionOfferHandOver
from actions.faq_actions import (
    ActionAnswerContact,
    ActionAnswerDelivery,
    ActionAnswerOpeningHours,
    ActionAnswerPaymentMethods,
    ActionAnswerProduct,
    ActionAnswerReturns,
)
from actions.handover_actions import ActionHandBack, ActionHandleComplaint, ActionHandOver
from actions.orders.model import Order
from actions.subscription_help import ActionSubscriptionHelp
from shop_contract.catalog import Catalog
from shop_contract.shop import Shop, default_shop
from tests.conftest import CUSTOMER, make_tracker, run_action, slot_updates

SATURDAY_NOON = datetime(2025, 1, 11, 11, 0, tzinfo=timezone.utc)  # 12:00 in Berlin
SUNDAY_NOON = datetime(2025, 1, 12, 11, 0, tzinfo=timezone.utc)


def tracker_with(
    intent: str,
    entities: Sequence[tuple[str, str]] = (),
    text: str = "",
    ranking: Sequence[tuple[str, float]] = (),
    slots: dict[str, Any] | None = None,
    earlier: Sequence[dict[str, Any]] = (),
    channel: str = "rest",
) -> Tracker:
    """A tracker whose latest message is `intent` (with entities, text and intent ranking),
    after the `earlier` events."""
    latest = {
        "intent": {"name": intent, "confidence": ranking[0][1] if ranking else 1.0},
        "entities": [{"entity": name, "value": value} for name, value in entities],
        "text": text,
        "intent_ranking": [{"name": name, "confidence": c} for name, c in ranking],
    }
    events = [
        *earlier,
        {"event": "user", "text": text, "parse_data": latest, "input_channel": channel},
    ]
    return Tracker(CUSTOMER, dict(slots or {}), latest, events, False, None, {}, "action_listen")


def bot_did(action: str) -> list[dict[str, Any]]:
    """Earlier events: a message, then the bot's `action` (and listening again)."""
    return [
        {"event": "user", "text": "…", "parse_data": {"intent": {"name": "x"}}},
        {"event": "action", "name": action},
        {"event": "action", "name": "action_listen"},
    ]


def paid_subscription(catalog: Catalog) -> Order:
    order = Order.start(catalog, {"coffee-club": 1}).with_link("cs_1", "https://pay")
    return order.paid_by("cs_1", None, "sub_1")


def test_delivery_is_answered_for_the_country_named(shop: Shop) -> None:
    (message,), events = run_action(
        ActionAnswerDelivery(), tracker_with("ask_delivery", [("country", "Austria")])
    )
    assert message["text"].startswith("Yes, we deliver to Austria: €7.90")
    (message,), _ = run_action(
        ActionAnswerDelivery(), tracker_with("ask_delivery", [("country", "Brazil")])
    )
    assert message["text"].startswith("Sorry, we don't deliver to Brazil.")
    (message,), _ = run_action(ActionAnswerDelivery(), tracker_with("ask_delivery"))
    assert all(d.name in message["text"] for d in shop.destinations)
    assert events == []


def test_payment_answer_says_no_to_the_method_asked_about() -> None:
    (message,), _ = run_action(
        ActionAnswerPaymentMethods(),
        tracker_with("ask_payment_methods", text="can I pay with PayPal?"),
    )
    assert message["text"].startswith("Sorry, we don't take PayPal. You can pay with ")


def test_returns_hours_and_contact_come_from_the_shop(shop: Shop) -> None:
    (returns,), _ = run_action(ActionAnswerReturns(), make_tracker("ask_returns"))
    assert shop.returns.refund in returns["text"]
    (hours,), _ = run_action(
        ActionAnswerOpeningHours(clock=lambda: SATURDAY_NOON), make_tracker("ask_opening_hours")
    )
    assert hours["text"].endswith("We're open now, until 14:00 (Berlin time).")
    (contact,), _ = run_action(
        ActionAnswerContact(clock=lambda: SUNDAY_NOON), make_tracker("ask_contact")
    )
    assert shop.contact.phone in contact["text"]
    assert contact["text"].endswith(
        "The team is closed now and open again tomorrow at 09:00 (Berlin time)."
    )


def test_a_product_question_is_answered_for_that_product_with_an_order_button(
    catalog: Catalog,
) -> None:
    tracker = tracker_with("ask_product", [("product", "pour-over-kit")])
    (message,), events = run_action(ActionAnswerProduct(), tracker)
    assert message["text"].startswith("Pour-Over Kit: €34.00.")
    assert not any(p.name in message["text"] for p in catalog if p.id != "pour-over-kit")
    assert message["buttons"] == [
        {"title": "Order it", "payload": '/order{"product": "pour-over-kit"}'}
    ]
    assert slot_updates(events) == {"product": "pour-over-kit"}  # so a "yes" orders it


def test_a_question_about_two_products_answers_both_and_offers_each() -> None:
    tracker = tracker_with(
        "ask_product", [("product", "Decaf"), ("product", "green-tea"), ("product", "decaf")]
    )
    (message,), events = run_action(ActionAnswerProduct(), tracker)
    assert "Decaf Beans: €13.90." in message["text"]
    assert "Sencha Green Tea: €8.90." in message["text"]
    assert [b["title"] for b in message["buttons"]] == ["Decaf Beans", "Sencha Green Tea"]
    assert slot_updates(events) == {"product": None}


def test_a_product_question_without_a_product_asks_which(catalog: Catalog) -> None:
    (message,), _ = run_action(ActionAnswerProduct(), make_tracker("ask_product"))
    assert message["text"] == "Which product would you like to know about?"
    assert [b["payload"] for b in message["buttons"]] == [
        f'/ask_product{{"product": "{p.id}"}}' for p in catalog
    ]
    (message,), _ = run_action(
        ActionAnswerProduct(), make_tracker("ask_product", slots={"product": "gift-card"})
    )
    assert message["text"].startswith("Gift Card 25 EUR: €25.00.")  # the one discussed


def test_hand_over_says_how_to_reach_a_person_and_records_why(shop: Shop) -> None:
    action = ActionHandOver(clock=lambda: SATURDAY_NOON)
    (message,), events = run_action(action, tracker_with("talk_to_person"))
    assert shop.contact.phone in message["text"] and shop.contact.email in message["text"]
    assert "They are open now, until 14:00" in message["text"]
    assert slot_updates(events) == {"handover": "asked"}
    _, events = run_action(
        action, tracker_with("affirm", earlier=bot_did("action_handle_complaint"))
    )
    assert slot_updates(events) == {"handover": "complaint"}
    _, events = run_action(
        action, tracker_with("talk_to_person", earlier=bot_did("action_offer_hand_over"))
    )
    assert slot_updates(events) == {"handover": "not_understood"}
    _, events = run_action(action, tracker_with("talk_to_person", earlier=bot_did("utter_greet")))
    assert slot_updates(events) == {"handover": "asked"}


def test_on_whatsapp_the_connector_is_asked_to_hand_over_with_both_texts(shop: Shop) -> None:
    earlier: list[dict[str, Any]] = [
        {"event": "user", "text": "/greet", "parse_data": {}},  # a tap, not words
        {"event": "action", "name": "utter_greet"},
        {"event": "user", "text": "the grinder came broken", "parse_data": {}},
        {"event": "action", "name": "action_handle_complaint"},
    ]
    tracker = tracker_with("affirm", text="yes please", earlier=earlier, channel="whatsapp")
    (message,), events = run_action(ActionHandOver(clock=lambda: SATURDAY_NOON), tracker)
    request = message["custom"]["hand_over_to_person"]
    assert request["reason"] == "complaint" == slot_updates(events)["handover"]
    assert request["transcript"] == ["the grinder came broken", "yes please"]
    assert request["paused"].startswith(f"I've asked the {shop.name} team to take over")
    assert "a person will answer you here in this chat" in request["paused"]
    assert "The team is in now (until 14:00)" in request["paused"]
    assert shop.contact.phone in request["unavailable"]  # when nobody can be told
    assert message["text"] is None

    (sunday,), _ = run_action(
        ActionHandOver(clock=lambda: SUNDAY_NOON),
        tracker_with("talk_to_person", channel="whatsapp"),
    )
    paused = sunday["custom"]["hand_over_to_person"]["paused"]
    assert "open again tomorrow at 09:00" in paused and "They'll answer then." in paused


def test_the_hand_back_clears_the_slot_and_says_why(shop: Shop) -> None:
    by_staff = tracker_with("EXTERNAL_handover_ended", [("handover_ended_by", "staff")])
    (message,), events = run_action(ActionHandBack(), by_staff)
    assert message["text"].startswith(f"The {shop.name} team has handed you back to me")
    assert slot_updates(events) == {"handover": None}
    timed_out = tracker_with("EXTERNAL_handover_ended", [("handover_ended_by", "timeout")])
    (message,), _ = run_action(ActionHandBack(), timed_out)
    assert message["text"].startswith(f"Nobody from the {shop.name} team has written for a while")
    assert "just ask for one" in message["text"]


def test_a_complaint_gets_an_apology_the_policy_and_the_offer_of_a_person(shop: Shop) -> None:
    tracker = tracker_with("complain", [("product", "espresso-beans")])
    (message,), events = run_action(ActionHandleComplaint(), tracker)
    assert message["text"].startswith("I'm sorry about that.")
    assert shop.returns.faulty in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/talk_to_person", "/deny"]
    assert slot_updates(events) == {"product": None}


def test_the_first_fallback_offers_the_three_likeliest_things() -> None:
    ranking = [
        ("nlu_fallback", 0.5),
        ("ask_delivery", 0.31),
        ("greet", 0.2),  # small talk is never offered
        ("ask_product", 0.12),
        ("affirm", 0.05),
        ("ask_returns", 0.03),
        ("order", 0.01),
    ]
    (message,), _ = run_action(
        ActionFallbackOptions(), tracker_with("nlu_fallback", text="postage?", ranking=ranking)
    )
    assert message["buttons"] == [
        {"title": "Delivery", "payload": "/ask_delivery"},
        {"title": "Product info", "payload": "/ask_product"},
        {"title": "Returns & refunds", "payload": "/ask_returns"},
    ]
    (message,), _ = run_action(
        ActionFallbackOptions(), tracker_with("nlu_fallback", ranking=[("greet", 0.4)])
    )
    assert [b["payload"] for b in message["buttons"]] == [
        "/browse_catalog",
        "/order",
        "/check_order_status",
    ]


def test_a_second_fallback_offers_a_person_first() -> None:
    ranking = [("nlu_fallback", 0.5), ("talk_to_person", 0.3), ("help", 0.2), ("order", 0.1)]
    (message,), _ = run_action(ActionOfferHandOver(), tracker_with("nlu_fallback", ranking=ranking))
    assert "talk to a person" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/talk_to_person", "/help", "/order"]


def test_every_button_a_fallback_offers_fits_whatsapp() -> None:
    assert all(len(title) <= 20 for title in OFFERS.values())
    assert "delete_my_data" not in OFFERS and "affirm" not in OFFERS


def test_subscription_status_without_one_offers_to_subscribe(catalog: Catalog) -> None:
    tracker = tracker_with("subscription_status", [("product", "coffee-club")])
    (message,), events = run_action(ActionSubscriptionHelp(), tracker)
    assert message["text"].startswith("I can't find a subscription of yours in this chat.")
    assert "Coffee Club Monthly: €14.90 every month" in message["text"]
    assert message["buttons"][0]["payload"] == '/order{"product": "coffee-club"}'
    assert slot_updates(events) == {"product": None}  # "subscription" was not an order


def test_subscription_status_tells_what_is_known_and_how_renewal_works(catalog: Catalog) -> None:
    order = paid_subscription(catalog)
    tracker = tracker_with("subscription_status", slots=order.to_slots())
    (message,), _ = run_action(ActionSubscriptionHelp(), tracker)
    assert message["text"].startswith(
        f"Your Coffee Club Monthly subscription started with order {order.id}: €14.90 every month."
    )
    assert "renews it automatically on the same day each month" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == [
        "/subscription_cancel",
        "/subscription_change_card",
        "/subscription_change_plan",
    ]
    cancelled = {
        "event": "user",
        "parse_data": {
            "intent": {"name": "EXTERNAL_subscription_cancelled"},
            "entities": [{"entity": "order_id", "value": order.id}],
        },
    }
    tracker = tracker_with("subscription_status", slots=order.to_slots(), earlier=[cancelled])
    (message,), _ = run_action(ActionSubscriptionHelp(), tracker)
    assert message["text"].endswith("is cancelled: no further payments are taken.")


def test_cancelling_or_changing_the_card_goes_to_a_person_without_a_portal_link(
    catalog: Catalog, shop: Shop
) -> None:
    slots = paid_subscription(catalog).to_slots()
    (message,), _ = run_action(
        ActionSubscriptionHelp(), tracker_with("subscription_cancel", slots=slots)
    )
    assert "I can't cancel it from this chat, but a person from our team can." in message["text"]
    assert shop.subscriptions.cancellation in message["text"]
    assert message["buttons"] == [{"title": "Talk to a person", "payload": "/talk_to_person"}]
    (message,), _ = run_action(
        ActionSubscriptionHelp(), tracker_with("subscription_change_card", slots=slots)
    )
    assert "change the card it is paid with" in message["text"]
    (message,), _ = run_action(ActionSubscriptionHelp(), tracker_with("subscription_cancel"))
    assert message["text"].startswith("I can't find a subscription of yours in this chat.")
    assert message["buttons"][0]["payload"] == "/talk_to_person"


def test_with_a_portal_link_the_customer_manages_it_there(
    catalog: Catalog, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://billing.stripe.com/p/login/test_123"
    with_portal = replace(shop, subscriptions=replace(shop.subscriptions, manage_url=url))
    monkeypatch.setattr(subscription_help, "default_shop", lambda: with_portal)
    slots = paid_subscription(catalog).to_slots()
    (message,), _ = run_action(
        ActionSubscriptionHelp(), tracker_with("subscription_change_card", slots=slots)
    )
    assert "change the card it is paid with yourself on Stripe's customer portal" in message["text"]
    assert message["text"].endswith(f"Manage subscription: {url}")
    (message,), _ = run_action(
        ActionSubscriptionHelp(),
        tracker_with("subscription_cancel", slots=slots, channel="whatsapp"),
    )
    action = message["custom"]["interactive"]["action"]
    assert action["parameters"] == {"display_text": "Manage subscription", "url": url}


@pytest.fixture
def shop() -> Shop:
    return default_shop()


def test_a_question_before_the_yes_to_the_payment_link_asks_for_it_again(
    catalog: Catalog,
) -> None:
    draft = Order.start(catalog, {"espresso-beans": 1})
    after_the_question = tracker_with(
        "ask_delivery",
        [("country", "Austria")],
        slots=draft.to_slots(),
        earlier=bot_did("action_start_order"),
    )
    (message,), _ = run_action(ActionAnswerDelivery(), after_the_question)
    assert message["text"].startswith("Yes, we deliver to Austria")
    assert message["text"].endswith(
        f"Your order {draft.id} is ready: shall I send you the payment link?"
    )
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]
    after_another_answer = tracker_with(
        "ask_opening_hours", slots=draft.to_slots(), earlier=bot_did("action_answer_delivery")
    )
    (message,), _ = run_action(ActionAnswerOpeningHours(), after_another_answer)
    assert "shall I send you the payment link?" in message["text"]
    declined = tracker_with("ask_returns", slots=draft.to_slots(), earlier=bot_did("utter_no_link"))
    (message,), _ = run_action(ActionAnswerReturns(), declined)
    assert "payment link" not in message["text"] and message["buttons"] == []
