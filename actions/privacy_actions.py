"""The customer's right to erasure, asked for in the chat ("delete my data").

Stripe keeps its own records (payments, the Stripe Customer, subscriptions): the question
says so and how to have them removed, and warns that a subscription is not cancelled by
erasing. The action server cannot erase the conversation itself: the Rasa server saves the tracker
after the turn and would write it all back. So the erase action only cancels what is still
open (a live payment link) and asks the WhatsApp connector, with a custom message, to erase
the customer once the turn is saved; the connector then sends the `done` text (or `failed`).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import current_order
from actions.payments.errors import PaymentError
from actions.payments.link_cancellation import cancel_payment
from actions.replies import on_whatsapp, yes_no_buttons
from actions.subscription_help import latest_news, subscriptions_held
from shop_contract.catalog import default_catalog
from shop_contract.custom_messages import ERASE_REQUEST_KEY
from shop_contract.intents import SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING
from shop_contract.shop import default_shop

ASK_TEXT = (
    "I can delete everything this shop's assistant holds about you: this conversation, your "
    "delivery details and your order history. Your payments, your customer record at our "
    "payment provider (Stripe) and any subscription stay with Stripe as the shop's payment "
    "records, your WhatsApp number on them; to have those removed too, ask us at {email}. "
    "Delete it all?"
)
SUBSCRIPTION_KEPT = (
    "Note: deleting your data does not cancel your {product} subscription, and Stripe keeps "
    'charging it. To end it, say "cancel my subscription" first.'
)
DONE_TEXT = (
    "Done: everything we held about you here is deleted. If you write again, we start fresh."
)
FAILED_TEXT = "Sorry, I couldn't delete your data just now. Please try again in a few minutes."


class ActionAskEraseData(Action):
    """Says what erasure covers and asks for a yes before anything is deleted."""

    def name(self) -> str:
        return "action_ask_erase_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = ASK_TEXT.format(email=default_shop().contact.email)
        held = [
            (order, product)
            for order, product in subscriptions_held(tracker, default_catalog())
            if latest_news(tracker, order) not in (SUBSCRIPTION_CANCELLED, SUBSCRIPTION_ENDING)
        ]
        if held:
            text = f"{SUBSCRIPTION_KEPT.format(product=held[-1][1].name)}\n\n{text}"
        dispatcher.utter_message(text=text, buttons=yes_no_buttons("Yes, delete it", "No, keep it"))
        return []


class ActionEraseMyData(Action):
    """Stops an open payment link, then has the connector erase the customer's data."""

    def name(self) -> str:
        return "action_erase_my_data"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if not on_whatsapp(tracker):
            dispatcher.utter_message(text="I can delete data for WhatsApp conversations only.")
            return []
        order = current_order(tracker)
        if order is not None and order.is_open and order.checkout_session_id:
            try:
                await cancel_payment(order)  # nobody must pay for an order we no longer know
            except PaymentError as error:
                dispatcher.utter_message(text=error.customer_message)
                return []
        dispatcher.utter_message(
            json_message={ERASE_REQUEST_KEY: {"done": DONE_TEXT, "failed": FAILED_TEXT}}
        )
        return []
