"""What the bot says when it is not sure what the customer meant (NLU fallback).

The first time, it offers the three things the customer most likely meant as buttons, read
from the NLU's intent ranking for that message. A second fallback in a row (the rules in
data/rules.yml tell which) offers a person first. Intents a button should not start —
small talk, yes/no, erasing the customer's data — are never offered.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.handover_actions import TALK_TO_PERSON_BUTTON

# Intents a fallback may offer, with the button's title (at most 20 characters: WhatsApp's
# reply-button limit).
OFFERS: dict[str, str] = {
    "browse_catalog": "See the catalog",
    "order": "Place an order",
    "check_order_status": "Order status",
    "cancel_order": "Cancel my order",
    "ask_product": "Product info",
    "ask_delivery": "Delivery",
    "ask_payment_methods": "Payment methods",
    "ask_returns": "Returns & refunds",
    "ask_opening_hours": "Opening hours",
    "ask_contact": "Contact us",
    "complain": "Report a problem",
    "subscription_status": "My subscription",
    "subscription_cancel": "End subscription",
    "subscription_change_card": "Change card",
    "subscription_change_plan": "Change plan",
    "talk_to_person": TALK_TO_PERSON_BUTTON["title"],
    "help": "What you can do",
}
# Offered when the ranking names fewer than needed.
USUAL = ("browse_catalog", "order", "check_order_status")
FIRST_TEXT = "Sorry, I'm not sure what you mean. Is it one of these?"
AGAIN_TEXT = "Sorry, I still don't understand. Would you like to talk to a person?"


def likely_intents(tracker: Tracker, count: int, leave_out: tuple[str, ...] = ()) -> list[str]:
    """The `count` offerable intents the latest message most likely meant, best first."""
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    ranked = [str(entry.get("name")) for entry in ranking]
    chosen: list[str] = []
    for intent in [*ranked, *USUAL]:
        if intent in OFFERS and intent not in chosen and intent not in leave_out:
            chosen.append(intent)
    return chosen[:count]


def offer_buttons(intents: list[str]) -> list[dict[str, str]]:
    return [{"title": OFFERS[intent], "payload": f"/{intent}"} for intent in intents]


class ActionFallbackOptions(Action):
    """First fallback: the three most likely things, as buttons."""

    def name(self) -> str:
        return "action_fallback_options"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        buttons = offer_buttons(likely_intents(tracker, 3))
        dispatcher.utter_message(text=FIRST_TEXT, buttons=buttons)
        return []


class ActionOfferHandOver(Action):
    """A fallback right after another: a person first, then the two most likely things."""

    def name(self) -> str:
        return "action_offer_hand_over"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        likely = likely_intents(tracker, 2, leave_out=("talk_to_person",))
        dispatcher.utter_message(
            text=AGAIN_TEXT, buttons=[TALK_TO_PERSON_BUTTON, *offer_buttons(likely)]
        )
        return []
