"""Hand-over to a person, and complaints (which offer one).

Only the conversation side exists so far: `action_hand_over` records in the `handover` slot
that (and why) the customer asked for a person, and tells them how to reach the team. Nothing
notifies the team or pauses the bot yet; the connector side of the hand-over will read the
slot's change. Until then the text says how to reach a person rather than promising that one
will write back.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.faq_actions import Clock, previous_bot_action, utc_now
from actions.shop_answers import complaint_answer, handover_answer
from shop_contract.shop import default_shop

HANDOVER_SLOT = "handover"
TALK_TO_PERSON_BUTTON = {"title": "Talk to a person", "payload": "/talk_to_person"}

# Why the customer is handed over, from what the bot did just before they asked.
ASKED = "asked"
COMPLAINT = "complaint"
NOT_UNDERSTOOD = "not_understood"
_REASON_AFTER = {
    "action_handle_complaint": COMPLAINT,
    "action_fallback_options": NOT_UNDERSTOOD,
    "action_offer_hand_over": NOT_UNDERSTOOD,
}


def handover_reason(tracker: Tracker) -> str:
    return _REASON_AFTER.get(previous_bot_action(tracker) or "", ASKED)


class ActionHandOver(Action):
    """The customer wants a person: says how to reach the team and records the request."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def name(self) -> str:
        return "action_hand_over"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text=handover_answer(default_shop(), self.clock()))
        return [SlotSet(HANDOVER_SLOT, handover_reason(tracker))]


class ActionHandleComplaint(Action):
    """An apology, what the shop does about faulty items and returns, and the offer of a
    person."""

    def name(self) -> str:
        return "action_handle_complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(
            text=complaint_answer(default_shop()),
            buttons=[TALK_TO_PERSON_BUTTON, {"title": "No, thanks", "payload": "/deny"}],
        )
        # A product named in a complaint is not one the customer wants to order next.
        return [SlotSet("product", None)]
