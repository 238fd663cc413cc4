"""Channel-aware replies: rich WhatsApp messages there, plain text everywhere else.

Custom messages for WhatsApp are Graph API message bodies without the envelope
(`messaging_product`, `to`/`recipient`): the connector's output channel adds it. Other
channels (`rasa shell`, REST) get the same content as text, so every path works anywhere.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

WHATSAPP_CHANNEL = "whatsapp"
CTA_DISPLAY_TEXT_LIMIT = 20
STATEMENT_DELAY = "It can take 5-10 days to show on your statement."  # after every refund


def on_whatsapp(tracker: Tracker) -> bool:
    """True when the conversation's latest input came through the WhatsApp connector."""
    channel: str | None = tracker.get_latest_input_channel()
    return channel == WHATSAPP_CHANNEL


def cta_url_message(body: str, display_text: str, url: str) -> dict[str, Any]:
    """A WhatsApp interactive `cta_url` message: text with one button that opens `url`."""
    return {
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": body},
            "action": {
                "name": "cta_url",
                "parameters": {
                    "display_text": display_text[:CTA_DISPLAY_TEXT_LIMIT],
                    "url": url,
                },
            },
        },
    }


def send_link(
    dispatcher: CollectingDispatcher, tracker: Tracker, body: str, display_text: str, url: str
) -> None:
    """A link as a WhatsApp button, or as text with the URL on other channels."""
    if on_whatsapp(tracker):
        dispatcher.utter_message(json_message=cta_url_message(body, display_text, url))
    else:
        dispatcher.utter_message(text=f"{body}\n{display_text}: {url}")


def yes_no_buttons(yes: str = "Yes", no: str = "No") -> list[dict[str, str]]:
    """Two reply buttons mapped to the affirm/deny intents."""
    return [{"title": yes, "payload": "/affirm"}, {"title": no, "payload": "/deny"}]
