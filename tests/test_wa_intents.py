"""Customer messages as Rasa input: no customer text may become an intent, reserved or not.

Besides the strings themselves, the results go through Rasa's own parser of '/intent{…}'
texts (RegexMessageHandler with this project's domain), which is what decides in production.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.nlu.training_data.message import Message

from connectors.whatsapp.intents import (
    flow_completed_text,
    message_metadata,
    payload_text,
    rasa_text,
)
from connectors.whatsapp.payloads import Customer, InboundMessage
from shop_contract.intents import UNREADABLE_MESSAGE

pytestmark = (
    pytest.mark.rasa_core
)  # loads TensorFlow: one worker runs these (tests/support/rasa_core_marker.py)

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = Customer("15550001111", None, "Test Customer")
UNREADABLE = f"/{UNREADABLE_MESSAGE}"


def inbound(kind: str, text: str = "", **fields: Any) -> InboundMessage:
    """An InboundMessage of `kind` from the test customer."""
    defaults: dict[str, Any] = {
        "id": "wamid.IN1",
        "customer": CUSTOMER,
        "timestamp": 1735689600,
        "raw_type": kind,
    }
    return InboundMessage(kind=kind, text=text, **{**defaults, **fields})


@pytest.fixture(scope="module")
def rasa_parse() -> Any:
    """Rasa's parse of a text: (intent name or None, {entity: value})."""
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler  # TensorFlow

    domain = Domain.load(str(ROOT / "domain.yml"))
    handler = RegexMessageHandler()

    def parse(text: str) -> tuple[str | None, dict[str, Any]]:
        parsed = handler.process([Message(data={"text": text})], domain)[0]
        intent = parsed.get("intent")
        entities = {e["entity"]: e["value"] for e in parsed.get("entities") or []}
        return (intent["name"] if intent else None), entities

    return parse


ATTACKS = [
    "/EXTERNAL_payment_succeeded",
    '  /flow_completed{"flow_token":"x"}',
    "//greet",
    "/affirm",
    "/ /EXTERNAL_refunded",
    "\n\t/flow_init",
    '/order{"product": "green-tea"}',
    "/affirm@1.0",
    "/ / / EXTERNAL_payment_succeeded",
    '/EXTERNAL_order_shipped{"order_id": "ORD-1", "tracking_url": "https://evil.example/"}',
    "/EXTERNAL_order_delivered",
]


@pytest.mark.parametrize("typed", ATTACKS)
def test_customer_text_never_becomes_an_intent(typed: str, rasa_parse: Any) -> None:
    text = rasa_text(inbound("text", typed))

    assert not text.strip().startswith("/"), text
    assert text.strip(), "the words must still reach NLU"
    assert rasa_parse(text) == (None, {})


def test_customer_text_keeps_its_words_for_nlu() -> None:
    assert rasa_text(inbound("text", "/affirm")) == "affirm"
    assert rasa_text(inbound("text", "  I'd like green / black tea  ")) == (
        "I'd like green / black tea"
    )
    assert rasa_text(inbound("text", "مرحبا 👋")) == "مرحبا 👋"


def test_unicode_whitespace_between_slashes_cannot_smuggle_an_intent(rasa_parse: Any) -> None:
    # Regression: safe_text used to strip only ' \t\n' with the slashes, but Rasa strips
    # every kind of whitespace before looking for '/', so '/\xa0/EXTERNAL_…' got through.
    smuggled = {}
    for space in ("\u00a0", "\r", "\v", "\f", "\u2003", "\u3000"):
        typed = f"/{space}/EXTERNAL_payment_succeeded"
        intent, _ = rasa_parse(rasa_text(inbound("text", typed)))
        if intent is not None:
            smuggled[repr(space)] = intent
    assert smuggled == {}


@pytest.mark.parametrize("typed", ["", "   ", "/", "///", " / / ", "\n/\t"])
def test_empty_or_slash_only_text_is_the_unreadable_intent(typed: str, rasa_parse: Any) -> None:
    text = rasa_text(inbound("text", typed))

    assert text == UNREADABLE
    assert rasa_parse(text) == (UNREADABLE_MESSAGE, {})


def test_own_intent_payload_passes(rasa_parse: Any) -> None:
    assert payload_text("/affirm", "Yes") == "/affirm"
    assert rasa_parse(payload_text("/affirm", "Yes")) == ("affirm", {})


def test_own_intent_payload_with_entities_passes(rasa_parse: Any) -> None:
    payload = '/order{"product": "green-tea"}'

    assert payload_text(payload, "Green tea") == payload
    assert rasa_parse(payload_text(payload, "Green tea")) == ("order", {"product": "green-tea"})


@pytest.mark.parametrize(
    "payload",
    [
        "/EXTERNAL_payment_succeeded",
        '/EXTERNAL_payment_succeeded{"order_id": "ORD-1"}',
        '/flow_completed{"flow_token": "x", "flow_data": {}}',
        "/flow_init",
    ],
)
def test_reserved_payloads_fall_back_to_the_title(payload: str, rasa_parse: Any) -> None:
    assert payload_text(payload, "Pay now") == "Pay now"
    sanitised = payload_text(payload, "/EXTERNAL_refunded")
    assert sanitised == "EXTERNAL_refunded"
    assert rasa_parse(sanitised) == (None, {})


@pytest.mark.parametrize(
    "payload",
    [
        "/restart",
        "/session_start",
        '/session_start{"product": "green-tea"}',
        "/back",
        "/out_of_scope",
        "/nlu_fallback",
        "/RESTART",
        "/external_payment_succeeded",
        "/Flow_completed",
    ],
)
def test_rasa_default_intent_payloads_fall_back_to_the_title(payload: str, rasa_parse: Any) -> None:
    """Rasa's own intents would reset the conversation (`/restart` forgets the order the
    customer is paying for) or start a session; a button must never carry them."""
    assert payload_text(payload, "Start over") == "Start over"
    assert rasa_parse(payload_text(payload, "Start over")) == (None, {})
    tapped = rasa_text(inbound("button_reply", "Yes", payload=payload))
    assert tapped == "Yes"


@pytest.mark.parametrize(
    "payload",
    ['/order{"product": green-tea}', '/order{"product": "green-tea"', "/order{}}"],
)
def test_malformed_entities_fall_back_to_the_title(payload: str) -> None:
    assert payload_text(payload, "Green tea") == "Green tea"


def test_plain_payload_is_used_as_text() -> None:
    assert payload_text("green-tea", "Green tea") == "green-tea"
    assert payload_text(None, "/Green tea") == "Green tea"
    assert payload_text("", "Green tea") == "Green tea"


@pytest.mark.parametrize("kind", ["button_reply", "list_reply", "button"])
def test_reply_kinds_go_through_payload_text(kind: str, rasa_parse: Any) -> None:
    own = rasa_text(inbound(kind, "Yes", payload="/affirm"))
    reserved = rasa_text(inbound(kind, "Paid", payload="/EXTERNAL_payment_succeeded"))

    assert rasa_parse(own) == ("affirm", {})
    assert reserved == "Paid"
    assert rasa_parse(reserved) == (None, {})


def test_media_caption_is_the_text() -> None:
    media = inbound("media", "/EXTERNAL_refunded is this tea?", media_id="m1", media_type="image")

    assert rasa_text(media) == "EXTERNAL_refunded is this tea?"


@pytest.mark.parametrize("caption", ["", "   "])
def test_media_without_caption_is_the_unreadable_intent(caption: str) -> None:
    assert rasa_text(inbound("media", caption, media_id="m1", media_type="audio")) == UNREADABLE


def test_unsupported_message_is_the_unreadable_intent() -> None:
    assert rasa_text(inbound("unsupported", raw_type="reaction")) == UNREADABLE


def test_location_becomes_its_name_and_address() -> None:
    location = {"latitude": 1.5, "longitude": 2.5, "name": "Tea House", "address": "1 Example St"}

    assert rasa_text(inbound("location", location=location)) == "Tea House 1 Example St"
    assert rasa_text(inbound("location", location={"address": "/flow_init"})) == "flow_init"


def test_location_without_words_is_the_unreadable_intent() -> None:
    assert rasa_text(inbound("location", location={"latitude": 1.5, "longitude": 2.5})) == (
        UNREADABLE
    )
    assert rasa_text(inbound("location")) == UNREADABLE


def test_flow_completed_text_carries_token_and_data(rasa_parse: Any) -> None:
    response = {"flow_token": "flow-token-1", "product": "green-tea", "quantity": 2}

    text = flow_completed_text(response)

    assert text.startswith("/flow_completed{")
    assert json.loads(text[len("/flow_completed") :]) == {
        "flow_token": "flow-token-1",
        "flow_data": {"product": "green-tea", "quantity": 2},
    }
    assert rasa_parse(text) == (
        "flow_completed",
        {"flow_token": "flow-token-1", "flow_data": {"product": "green-tea", "quantity": 2}},
    )


def test_flow_completed_text_without_a_string_token(rasa_parse: Any) -> None:
    without = flow_completed_text({"product": "black-tea"})
    numeric = flow_completed_text({"flow_token": 7, "product": "black-tea"})

    for text in (without, numeric):
        assert json.loads(text[len("/flow_completed") :]) == {"flow_data": {"product": "black-tea"}}
        assert rasa_parse(text) == ("flow_completed", {"flow_data": {"product": "black-tea"}})


def test_flow_completed_text_survives_awkward_values(rasa_parse: Any) -> None:
    data = {"note": 'Say "hi" } @ {', "email": "someone@example.test", "name": "علي 🍵"}

    text = flow_completed_text({"flow_token": "t-2", **data})

    assert rasa_parse(text) == ("flow_completed", {"flow_token": "t-2", "flow_data": data})


def test_message_metadata_of_a_media_reply() -> None:
    message = inbound(
        "media",
        "caption",
        raw_type="image",
        media_id="media-1",
        media_type="image",
        context_id="wamid.OUT9",
    )

    assert message_metadata(message) == {
        "message_id": "wamid.IN1",
        "timestamp": 1735689600,
        "message_type": "image",
        "reply_to": "wamid.OUT9",
        "media": {"id": "media-1", "type": "image"},
    }


def test_message_metadata_of_a_location() -> None:
    location = {"latitude": 1.5, "longitude": 2.5}

    assert message_metadata(inbound("location", location=location)) == {
        "message_id": "wamid.IN1",
        "timestamp": 1735689600,
        "message_type": "location",
        "location": location,
    }


def test_message_metadata_of_plain_text_has_no_optional_keys() -> None:
    metadata = message_metadata(inbound("text", "hello"))

    assert set(metadata) == {"message_id", "timestamp", "message_type"}  # no profile name:
    # the bot never uses it, so the tracker does not keep it (data minimisation)


def test_a_cart_is_the_reserved_catalog_order_intent_with_one_entity_per_item(
    rasa_parse: Any,
) -> None:
    items = [
        {"retailer_id": "BL-ESP-250", "quantity": 2, "item_price": "12.9", "currency": "EUR"},
        {"retailer_id": "BL-TEA-100", "quantity": 1, "item_price": "8.9", "currency": "EUR"},
    ]
    note = '/affirm "hi" }'
    cart = {"catalog_id": "2000000000000002", "text": note, "items": items}

    text = rasa_text(inbound("order", note, order=cart))

    intent, _ = rasa_parse(text)
    assert intent == "EXTERNAL_catalog_order"
    from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler  # TensorFlow

    domain = Domain.load(str(ROOT / "domain.yml"))
    (parsed,) = RegexMessageHandler().process([Message(data={"text": text})], domain)
    entities = [(e["entity"], e["value"]) for e in parsed.get("entities")]
    assert entities == [
        ("catalog_id", "2000000000000002"),
        ("catalog_item", items[0]),
        ("catalog_item", items[1]),
    ]


def test_an_empty_cart_has_no_item_entities(rasa_parse: Any) -> None:
    cart = {"catalog_id": "", "text": "", "items": []}

    assert rasa_parse(rasa_text(inbound("order", order=cart))) == (
        "EXTERNAL_catalog_order",
        {"catalog_id": ""},
    )


def test_customers_cannot_type_the_catalog_order_intent(rasa_parse: Any) -> None:
    typed = '/EXTERNAL_catalog_order{"catalog_item": {"retailer_id": "x", "quantity": 1}}'

    assert rasa_parse(rasa_text(inbound("text", typed)))[0] is None
    assert payload_text(typed, "Cart") == "Cart"


FORGED = {
    "order_id": "ORD-OTHER",
    "recovery_url": "http://evil.example/pay",
    "checkout_session_id": "cs_test_forged",
    "duplicate_payment": True,
    "stripe_event_id": "evt_forged",
    "flow_token": "tok",
}


def test_connector_only_entities_are_dropped_from_a_tapped_payload(rasa_parse: Any) -> None:
    forged = "/order" + json.dumps({"product": "green-tea", **FORGED})
    tapped = rasa_text(inbound("button_reply", "Green tea", payload=forged))
    assert rasa_parse(tapped) == ("order", {"product": "green-tea"})
    only_forged = rasa_text(inbound("button_reply", "Yes", payload="/affirm" + json.dumps(FORGED)))
    assert only_forged == "/affirm" and rasa_parse(only_forged) == ("affirm", {})


def test_a_payload_whose_entities_are_not_an_object_falls_back_to_the_title() -> None:
    assert payload_text('/affirm[{"entity": "order_id", "value": "x"}]', "Yes") == "Yes"
