"""Hand-over to a person, its end, and complaints (which offer one).

`action_hand_over` records in the `handover` slot why the customer asked for a person. On
WhatsApp it asks the connector to hand the customer over, with a custom message
(shop_contract/custom_messages.py) carrying both possible texts: once the turn is saved the
connector pauses the bot for this customer, tells the shop and sends the `paused` text — or,
when the shop set up no way to be told, sends the `unavailable` one, which says how to reach
the team. Elsewhere (`rasa shell`, REST) nobody is told, so the customer gets that text.

When the shop (or the timeout) gives the conversation back, the connector triggers
`EXTERNAL_handover_ended`, and `action_hand_back` clears the slot and says so.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import entity
from actions.faq_actions import Clock, previous_bot_action, utc_now
from actions.replies import on_whatsapp
from actions.shop_answers import (
    complaint_answer,
    handback_answer,
    handover_answer,
    handover_paused_answer,
)
from shop_contract.custom_messages import (
    HANDOVER_PAUSED_TEXT,
    HANDOVER_REASON,
    HANDOVER_REQUEST_KEY,
    HANDOVER_TRANSCRIPT,
    HANDOVER_UNAVAILABLE_TEXT,
)
from shop_contract.entities import ENDED_BY_TIMEOUT, HANDOVER_ENDED_BY
from shop_contract.shop import default_shop

HANDOVER_SLOT = "handover"
TALK_TO_PERSON_BUTTON = {"title": "Talk to a person", "payload": "/talk_to_person"}
TRANSCRIPT_MESSAGES = 5  # the customer's last messages the shop gets with the hand-over
TRANSCRIPT_CHARACTERS = 500  # of each

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


def transcript(tracker: Tracker) -> list[str]:
    """What the customer wrote last (oldest first), without button taps (`/intent`): the
    context a person needs to pick the conversation up."""
    texts = [
        str(event.get("text") or "").strip()
        for event in tracker.events
        if event.get("event") == "user"
    ]
    written = [text[:TRANSCRIPT_CHARACTERS] for text in texts if text and text[0] != "/"]
    return written[-TRANSCRIPT_MESSAGES:]


class ActionHandOver(Action):
    """The customer wants a person: the connector hands them over (on WhatsApp), or they
    are told how to reach the team."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock

    def name(self) -> str:
        return "action_hand_over"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        shop, now, reason = default_shop(), self.clock(), handover_reason(tracker)
        if on_whatsapp(tracker):
            request = {
                HANDOVER_REASON: reason,
                HANDOVER_PAUSED_TEXT: handover_paused_answer(shop, now),
                HANDOVER_UNAVAILABLE_TEXT: handover_answer(shop, now),
                HANDOVER_TRANSCRIPT: transcript(tracker),
            }
            dispatcher.utter_message(json_message={HANDOVER_REQUEST_KEY: request})
        else:
            dispatcher.utter_message(text=handover_answer(shop, now))
        return [SlotSet(HANDOVER_SLOT, reason)]


class ActionHandBack(Action):
    """The conversation is the bot's again (EXTERNAL_handover_ended): clears the slot and
    tells the customer, differently when nobody from the shop wrote in time."""

    def name(self) -> str:
        return "action_hand_back"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        timed_out = entity(tracker, HANDOVER_ENDED_BY) == ENDED_BY_TIMEOUT
        dispatcher.utter_message(text=handback_answer(default_shop(), timed_out))
        return [SlotSet(HANDOVER_SLOT, None)]


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
