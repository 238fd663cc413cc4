"""parse_notification on Meta's webhook notifications: every message type, statuses, batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.whatsapp.payloads import (
    Customer,
    InboundMessage,
    Notification,
    PayloadError,
    message_from_json,
    message_to_json,
    parse_notification,
    readable,
)

PHONE_NUMBER_ID = "100000000000001"
CUSTOMER_PHONE = "15550001111"
OTHER_PHONE = "15550002222"
THIRD_PHONE = "15550003333"
USER_ID = "US.13491208655302741918"
TIMESTAMP = "1735689600"


def contact(
    wa_id: str | None = CUSTOMER_PHONE, user_id: str | None = None, name: str = "Test Customer"
) -> dict[str, Any]:
    """One entry of `value.contacts`."""
    found: dict[str, Any] = {"profile": {"name": name}}
    if wa_id is not None:
        found["wa_id"] = wa_id
    if user_id is not None:
        found["user_id"] = user_id
    return found


def message(
    message_type: str,
    content: dict[str, Any] | None = None,
    message_id: str = "wamid.IN1",
    sender: str | None = CUSTOMER_PHONE,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of `value.messages`; `content` goes under the key named by the type."""
    found: dict[str, Any] = {"id": message_id, "timestamp": TIMESTAMP, "type": message_type}
    if sender is not None:
        found["from"] = sender
    if content is not None:
        found[message_type] = content
    found.update(extra)
    return found


def value(
    messages: list[Any] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    statuses: list[Any] | None = None,
) -> dict[str, Any]:
    """One `entry[].changes[].value` (lists typed loosely so tests can slip in junk)."""
    found: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550009999", "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts is not None:
        found["contacts"] = contacts
    if messages is not None:
        found["messages"] = messages
    if statuses is not None:
        found["statuses"] = statuses
    return found


def notification(*entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole webhook body: one entry per argument, each a list of change values."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": f"20000000000000{number}",
                "changes": [{"field": "messages", "value": v} for v in values],
            }
            for number, values in enumerate(entries)
        ],
    }


def single(
    raw_message: dict[str, Any], contacts: list[dict[str, Any]] | None = None
) -> InboundMessage:
    """The one InboundMessage of a notification carrying `raw_message`."""
    parsed = parse_notification(
        notification([value([raw_message], [contact()] if contacts is None else contacts)])
    )
    assert parsed.statuses == []
    assert len(parsed.messages) == 1
    return parsed.messages[0]


def interactive(sub: str, reply: dict[str, Any], **ids: Any) -> dict[str, Any]:
    """An interactive reply of type `sub`; `ids` are message()'s message_id/sender."""
    return message("interactive", {"type": sub, sub: reply}, **ids)


def test_text_message() -> None:
    parsed = single(message("text", {"body": "Hello, I would like green tea"}))

    assert parsed == InboundMessage(
        id="wamid.IN1",
        customer=Customer(CUSTOMER_PHONE, None, "Test Customer"),
        timestamp=int(TIMESTAMP),
        kind="text",
        text="Hello, I would like green tea",
        raw_type="text",
    )
    assert parsed.customer.key == CUSTOMER_PHONE
    assert parsed.customer.uses_user_id is False


def test_button_reply() -> None:
    parsed = single(interactive("button_reply", {"id": "/affirm", "title": "Yes"}))

    assert (parsed.kind, parsed.payload, parsed.text) == ("button_reply", "/affirm", "Yes")
    assert parsed.raw_type == "interactive"


def test_list_reply() -> None:
    reply = {"id": '/order{"product":"green-tea"}', "title": "Green tea", "description": "50 g"}
    parsed = single(interactive("list_reply", reply))

    assert (parsed.kind, parsed.payload, parsed.text) == (
        "list_reply",
        '/order{"product":"green-tea"}',
        "Green tea",
    )


def nfm_reply(response_json: str) -> dict[str, Any]:
    return interactive(
        "nfm_reply", {"name": "flow", "body": "Sent", "response_json": response_json}
    )


def test_flow_reply_with_flow_token() -> None:
    response = {"flow_token": "flow-token-1", "product": "green-tea", "quantity": 2}
    parsed = single(nfm_reply(json.dumps(response)))

    assert parsed.kind == "nfm_reply"
    assert parsed.text == "Sent"
    assert parsed.flow_response == response


def test_flow_reply_without_flow_token() -> None:
    parsed = single(nfm_reply(json.dumps({"product": "black-tea"})))

    assert parsed.kind == "nfm_reply"
    assert parsed.flow_response == {"product": "black-tea"}


@pytest.mark.parametrize("broken", ['{"flow_token": "x", ', "not json", '["a", "list"]', ""])
def test_flow_reply_with_unusable_response_json_is_kept_with_an_empty_response(
    broken: str,
) -> None:
    parsed = single(nfm_reply(broken))

    assert parsed.kind == "nfm_reply"
    assert parsed.flow_response == {}


def test_template_quick_reply_button() -> None:
    parsed = single(message("button", {"text": "Track my order", "payload": "/check_order_status"}))

    assert (parsed.kind, parsed.text, parsed.payload) == (
        "button",
        "Track my order",
        "/check_order_status",
    )


def test_location() -> None:
    location = {
        "latitude": 52.52,
        "longitude": 13.405,
        "name": "Tea House",
        "address": "1 Example Street",
    }
    parsed = single(message("location", location))

    assert parsed.kind == "location"
    assert parsed.location == location
    assert parsed.text == ""


@pytest.mark.parametrize("media_type", ["image", "document", "audio"])
@pytest.mark.parametrize("caption", ["Is this tea still available?", None])
def test_media_with_and_without_caption(media_type: str, caption: str | None) -> None:
    content: dict[str, Any] = {"id": f"media-{media_type}-1", "mime_type": "application/x-test"}
    if caption is not None:
        content["caption"] = caption
    parsed = single(message(media_type, content))

    assert parsed.kind == "media"
    assert parsed.media_type == media_type
    assert parsed.media_id == f"media-{media_type}-1"
    assert parsed.text == (caption or "")
    assert parsed.raw_type == media_type


def test_sticker_is_media_without_text() -> None:
    # The module lists stickers among media (it keeps the media id); without a caption the
    # intent mapping turns it into the unreadable-message intent (see test_wa_intents.py).
    parsed = single(message("sticker", {"id": "sticker-1", "animated": False}))

    assert (parsed.kind, parsed.media_type, parsed.media_id, parsed.text) == (
        "media",
        "sticker",
        "sticker-1",
        "",
    )


@pytest.mark.parametrize(
    "raw",
    [
        message("reaction", {"message_id": "wamid.OUT1", "emoji": "👍"}),
        message("contacts", None, contacts=[{"name": {"formatted_name": "Someone"}}]),
        message("unknown", None, errors=[{"code": 131051, "title": "Unsupported"}]),
        message("interactive", {"type": "something_new"}),
        message("", None),
    ],
)
def test_unknown_types_are_kept_as_unsupported(raw: dict[str, Any]) -> None:
    parsed = single(raw)

    assert parsed.kind == "unsupported"
    assert parsed.id == "wamid.IN1"
    assert parsed.customer.key == CUSTOMER_PHONE


def test_reply_context_id() -> None:
    raw = message(
        "text", {"body": "This one"}, context={"from": "15550009999", "id": "wamid.OUT42"}
    )

    assert single(raw).context_id == "wamid.OUT42"
    assert single(message("text", {"body": "no context"})).context_id is None


def status(status_name: str, message_id: str = "wamid.OUT1", **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": message_id,
        "status": status_name,
        "timestamp": TIMESTAMP,
        "recipient_id": CUSTOMER_PHONE,
    }
    found.update(extra)
    return found


@pytest.mark.parametrize("status_name", ["sent", "delivered", "read"])
def test_delivery_statuses(status_name: str) -> None:
    parsed = parse_notification(notification([value(statuses=[status(status_name)])]))

    assert parsed.messages == []
    assert len(parsed.statuses) == 1
    update = parsed.statuses[0]
    assert (update.message_id, update.status, update.recipient, update.timestamp) == (
        "wamid.OUT1",
        status_name,
        CUSTOMER_PHONE,
        int(TIMESTAMP),
    )
    assert (update.error_code, update.error_title) == (None, None)


def test_failed_status_carries_the_first_error() -> None:
    errors = [
        {"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"},
        {"code": 1, "title": "second error"},
    ]
    parsed = parse_notification(notification([value(statuses=[status("failed", errors=errors)])]))

    update = parsed.statuses[0]
    assert update.status == "failed"
    assert (update.error_code, update.error_title) == (131047, "Re-engagement message")


def test_status_of_a_business_scoped_recipient() -> None:
    raw = status("delivered")
    del raw["recipient_id"]
    raw["recipient_user_id"] = USER_ID

    assert parse_notification(notification([value(statuses=[raw])])).statuses[0].recipient == (
        USER_ID
    )


def test_batched_notification_keeps_every_message_in_order() -> None:
    first_change = value(
        [
            message("text", {"body": "one"}, "wamid.A1", CUSTOMER_PHONE),
            message("text", {"body": "two"}, "wamid.B1", OTHER_PHONE),
            message("text", {"body": "three"}, "wamid.A2", CUSTOMER_PHONE),
        ],
        [contact(CUSTOMER_PHONE, name="Alice"), contact(OTHER_PHONE, name="Bob")],
    )
    second_change = value(statuses=[status("read", "wamid.OUT7")])
    third_change = value(
        [
            interactive(
                "button_reply",
                {"id": "/deny", "title": "No"},
                message_id="wamid.C1",
                sender=THIRD_PHONE,
            )
        ],
        [contact(THIRD_PHONE, name="Carol")],
    )
    last_entry = value(
        [message("text", {"body": "four"}, "wamid.B2", OTHER_PHONE)],
        [contact(OTHER_PHONE, name="Bob")],
    )

    parsed = parse_notification(
        notification([first_change, second_change, third_change], [last_entry])
    )

    assert [(m.id, m.customer.key, m.customer.profile_name) for m in parsed.messages] == [
        ("wamid.A1", CUSTOMER_PHONE, "Alice"),
        ("wamid.B1", OTHER_PHONE, "Bob"),
        ("wamid.A2", CUSTOMER_PHONE, "Alice"),
        ("wamid.C1", THIRD_PHONE, "Carol"),
        ("wamid.B2", OTHER_PHONE, "Bob"),
    ]
    assert [m.text for m in parsed.messages] == ["one", "two", "three", "No", "four"]
    assert [s.message_id for s in parsed.statuses] == ["wamid.OUT7"]


def test_business_scoped_user_without_phone() -> None:
    raw = message("text", {"body": "hi"}, sender=None, from_user_id=USER_ID)
    parsed = single(raw, [contact(wa_id=None, user_id=USER_ID, name="tea_lover")])

    assert parsed.customer == Customer(None, USER_ID, "tea_lover")
    assert parsed.customer.key == USER_ID
    assert parsed.customer.uses_user_id is True


def test_customer_with_phone_and_user_id_is_keyed_by_the_user_id() -> None:
    both = [contact(wa_id=CUSTOMER_PHONE, user_id=USER_ID)]
    with_both_ids = single(message("text", {"body": "hi"}, from_user_id=USER_ID), both)
    with_phone_only = single(message("text", {"body": "hi"}), both)

    for parsed in (with_both_ids, with_phone_only):
        assert parsed.customer.wa_id == CUSTOMER_PHONE
        assert parsed.customer.user_id == USER_ID
        assert parsed.customer.key == USER_ID
        assert parsed.customer.uses_user_id is True


def test_sender_without_contacts_entry_uses_the_message_ids() -> None:
    parsed = single(message("text", {"body": "hi"}), contacts=[])

    assert parsed.customer == Customer(CUSTOMER_PHONE, None, None)
    assert parsed.customer.key == CUSTOMER_PHONE


@pytest.mark.parametrize(
    "document",
    [
        None,
        "entry",
        [{"entry": []}],
        {},
        {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {"changes": []}},
        {"object": "whatsapp_business_account", "entry": "[]"},
    ],
)
def test_malformed_documents_raise_payload_error(document: Any) -> None:
    with pytest.raises(PayloadError):
        parse_notification(document)


def test_empty_entry_list_is_an_empty_notification() -> None:
    assert parse_notification({"object": "whatsapp_business_account", "entry": []}) == (
        Notification()
    )


def test_malformed_items_in_a_batch_are_skipped_and_the_rest_kept() -> None:
    no_id = message("text", {"body": "lost"})
    del no_id["id"]
    empty_id = message("text", {"body": "lost too"}, message_id="")
    status_without_id = status("read")
    del status_without_id["id"]
    change = value(
        [
            message("text", {"body": "first"}, "wamid.OK1"),
            no_id,
            "not a message",
            empty_id,
            message("text", {"body": "last"}, "wamid.OK2"),
        ],
        [contact()],
        [status_without_id, status("delivered", "wamid.OUT2")],
    )
    document = notification([change])
    document["entry"].insert(0, "not an entry")

    parsed = parse_notification(document)

    assert [(m.id, m.text) for m in parsed.messages] == [
        ("wamid.OK1", "first"),
        ("wamid.OK2", "last"),
    ]
    assert [s.message_id for s in parsed.statuses] == ["wamid.OUT2"]


def test_message_without_any_sender_id_is_skipped_like_other_malformed_ones() -> None:
    # Regression: a sender-less message used to reach the record loop and turn the whole
    # batch into a 503 after its earlier messages were recorded (so Meta's retry lost them).
    anonymous = message("text", {"body": "who am I?"}, "wamid.X1", sender=None)
    change = value(
        [
            message("text", {"body": "one"}, "wamid.A1", CUSTOMER_PHONE),
            anonymous,
            message("text", {"body": "two"}, "wamid.B1", OTHER_PHONE),
        ],
        [contact(CUSTOMER_PHONE), contact(OTHER_PHONE)],
    )

    parsed = parse_notification(notification([change]))

    usable = []
    for inbound in parsed.messages:
        try:
            usable.append((inbound.id, inbound.customer.key))
        except PayloadError:
            usable.append((inbound.id, "<no key: PayloadError>"))
    assert usable == [("wamid.A1", CUSTOMER_PHONE), ("wamid.B1", OTHER_PHONE)]


def order(items: list[Any], catalog_id: Any = "2000000000000002", **extra: Any) -> dict[str, Any]:
    """A cart as WhatsApp sends it (`type: order`)."""
    return message("order", {"catalog_id": catalog_id, "product_items": items, **extra})


def test_cart_order_message_keeps_every_item_as_sent() -> None:
    items = [
        {"product_retailer_id": "BL-ESP-250", "quantity": 2, "item_price": 12.9, "currency": "EUR"},
        {"product_retailer_id": "BL-TEA-100", "quantity": "1", "item_price": 8, "currency": "EUR"},
    ]

    parsed = single(order(items, text="for the office"))

    assert (parsed.kind, parsed.raw_type, parsed.text) == ("order", "order", "for the office")
    assert parsed.order == {
        "catalog_id": "2000000000000002",
        "text": "for the office",
        "items": [
            {"retailer_id": "BL-ESP-250", "quantity": 2, "item_price": "12.9", "currency": "EUR"},
            {"retailer_id": "BL-TEA-100", "quantity": 1, "item_price": "8", "currency": "EUR"},
        ],
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({}, {"retailer_id": "", "quantity": None, "item_price": None, "currency": ""}),
        (
            {"product_retailer_id": "X", "quantity": True, "item_price": "NaN", "currency": 5},
            {"retailer_id": "X", "quantity": None, "item_price": None, "currency": "5"},
        ),
        (
            {"product_retailer_id": "X", "quantity": 1.5, "item_price": [1], "currency": "EUR"},
            {"retailer_id": "X", "quantity": None, "item_price": None, "currency": "EUR"},
        ),
        (
            {"product_retailer_id": "X", "quantity": -3, "item_price": "-1", "currency": "EUR"},
            {"retailer_id": "X", "quantity": -3, "item_price": "-1", "currency": "EUR"},
        ),
    ],
)
def test_cart_items_keep_unusable_values_as_none(
    item: dict[str, Any], expected: dict[str, Any]
) -> None:
    parsed = single(order([item]))

    assert parsed.order is not None and parsed.order["items"] == [expected]


def test_cart_without_items_or_with_junk_items() -> None:
    assert single(message("order", None)).order == {"catalog_id": "", "text": "", "items": []}
    junk = single(order(["not an item", 7, None], catalog_id=None))
    assert junk.order == {"catalog_id": "", "text": "", "items": []}


def test_cart_survives_the_replay_record() -> None:
    item = {"product_retailer_id": "BL-ESP-250", "quantity": 2, "item_price": 1, "currency": "EUR"}
    parsed = single(order([item]))

    assert message_from_json(message_to_json(parsed)) == parsed
    assert readable(parsed)["items"] == [{"retailer_id": "BL-ESP-250", "quantity": 2}]
