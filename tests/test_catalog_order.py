"""A cart from the Meta catalog (the connector's EXTERNAL_catalog_order with one catalog_item
per line) becomes a draft order priced from data/catalog.yml, or a reply saying why not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.catalog_order_actions import NO_CARTS, ActionCatalogOrder
from actions.faq_actions import ActionAnswerProduct
from actions.order_actions import ActionShowCatalog
from actions.orders.cart import WRONG_CATALOG
from actions.orders.model import Order
from actions.orders.money import minor_units
from actions.orders.states import OrderStatus
from actions.settings import action_settings
from tests.conftest import CUSTOMER, run_action, slot_updates

CATALOG_ID = "2000000000000002"


@pytest.fixture(autouse=True)
def meta_catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WHATSAPP_CATALOG_ID", CATALOG_ID)
    action_settings.cache_clear()
    yield
    action_settings.cache_clear()


def item(
    retailer_id: str, quantity: Any, price: Any = None, currency: str = "EUR"
) -> dict[str, Any]:
    return {
        "retailer_id": retailer_id,
        "quantity": quantity,
        "item_price": price,
        "currency": currency,
    }


ESPRESSO = item("BL-ESP-250", 2, "12.9")
TEA = item("BL-SEN-100", 1, "8.9")


def cart(
    *items: dict[str, Any], catalog_id: str = CATALOG_ID, slots: dict[str, Any] | None = None
) -> Tracker:
    entities = [{"entity": "catalog_id", "value": catalog_id}] + [
        {"entity": "catalog_item", "value": i} for i in items
    ]
    latest = {
        "intent": {"name": "EXTERNAL_catalog_order", "confidence": 1.0},
        "entities": entities,
        "text": "",
    }
    events = [{"event": "user", "text": "", "parse_data": latest, "input_channel": "whatsapp"}]
    return Tracker(CUSTOMER, dict(slots or {}), latest, events, False, None, {}, "action_listen")


def answer(tracker: Tracker) -> tuple[list[dict[str, Any]], Order | None]:
    messages, events = run_action(ActionCatalogOrder(), tracker)
    return messages, Order.from_slots({**tracker.slots, **slot_updates(events)})


def test_a_two_product_cart_is_a_draft_with_both_lines_and_the_usual_buttons() -> None:
    (message,), order = answer(cart(ESPRESSO, TEA))

    assert order is not None and order.status == OrderStatus.DRAFT
    assert [(line.product_id, line.quantity, line.unit_amount) for line in order.lines] == [
        ("espresso-beans", 2, 1290),
        ("green-tea", 1, 890),
    ]
    assert message["text"].startswith(
        "Here's your cart as an order, at our current prices.\n"
        f"Your order {order.id}:\n2 × Espresso Beans — €25.80\n1 × Sencha Green Tea — €8.90\n"
    )
    assert "changed" not in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/change_order", "/deny"]


def test_a_tampered_price_is_not_honoured_and_the_customer_is_told_ours() -> None:
    cheap = item("BL-ESP-250", 2, 0.01)

    (message,), order = answer(cart(cheap))

    assert order is not None and order.lines[0].unit_amount == 1290
    assert order.subtotal == 2580
    assert (
        "The price of Espresso Beans has changed: it's €12.90 now (your cart showed €0.01)."
        in message["text"]
    )


@pytest.mark.parametrize(
    ("sent", "note"),
    [
        (item("BL-ESP-250", 1, "12.9", "USD"), "it's €12.90 now (your cart showed $12.90)"),
        (item("BL-ESP-250", 1, None), "Espresso Beans costs €12.90."),
        (item("BL-ESP-250", 1, "12.905"), "Espresso Beans costs €12.90."),
    ],
)
def test_another_currency_or_an_unreadable_price_shows_ours(
    sent: dict[str, Any], note: str
) -> None:
    (message,), order = answer(cart(sent))

    assert order is not None and order.total == 1290 + order.shipping
    assert note in message["text"]


def test_the_same_item_twice_is_one_line() -> None:
    _, order = answer(cart(ESPRESSO, item("BL-ESP-250", 3, "12.90")))

    assert order is not None
    assert [(line.product_id, line.quantity) for line in order.lines] == [("espresso-beans", 5)]


@pytest.mark.parametrize(
    ("tracker", "reply"),
    [
        (cart(ESPRESSO, catalog_id="999"), WRONG_CATALOG),
        (cart(ESPRESSO, catalog_id=""), WRONG_CATALOG),
        (cart(), "Your cart was empty."),
        (cart(ESPRESSO, item("NOT-OURS", 1, "1")), "One item in your cart is not in our catalog"),
        (cart(item("X", 1), item("Y", 1)), "2 items in your cart are not in our catalog"),
        (cart(item("BL-ESP-250", 0, "12.9")), "I couldn't read how many Espresso Beans"),
        (cart(item("BL-ESP-250", None, "12.9")), "I couldn't read how many Espresso Beans"),
        (cart(item("BL-ESP-250", 11, "12.9")), "at most 10 × Espresso Beans"),
        (
            cart(
                *(
                    item(r, 1)
                    for r in [
                        "BL-ESP-250",
                        "BL-FIL-250",
                        "BL-DEC-250",
                        "BL-SEN-100",
                        "BL-KIT-POUR",
                        "BL-GIFT-25",
                    ]
                )
            ),
            "An order can hold up to 5 different products.",
        ),
    ],
)
def test_a_cart_that_cannot_be_taken_gets_a_reply_and_no_order(
    tracker: Tracker, reply: str
) -> None:
    (message,), order = answer(tracker)

    assert reply in message["text"]
    assert order is None


def test_an_order_with_a_payment_link_is_not_replaced_by_a_cart() -> None:
    _, draft = answer(cart(TEA))
    assert draft is not None
    waiting = draft.with_link("cs_test_1", "https://checkout.example/pay")

    (message,), after = answer(cart(ESPRESSO, slots=waiting.to_slots()))

    assert "Pay it first, or cancel it" in message["text"]
    assert after is not None and after.id == waiting.id and after.lines == waiting.lines


def test_without_a_catalog_id_carts_are_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHATSAPP_CATALOG_ID")
    action_settings.cache_clear()

    (message,), order = answer(cart(ESPRESSO))

    assert message["text"] == NO_CARTS and order is None


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.9", "eur", 1290),
        ("12.90", "EUR", 1290),
        ("7", "usd", 700),
        ("1200", "jpy", 1200),
        ("12.905", "eur", None),
        ("1.5", "jpy", None),
        ("abc", "eur", None),
        ("inf", "eur", None),
    ],
)
def test_minor_units_of_a_cart_price(text: str, currency: str, minor: int | None) -> None:
    assert minor_units(text, currency) == minor


def asked(intent: str, channel: str, entities: list[dict[str, Any]] | None = None) -> Tracker:
    latest = {"intent": {"name": intent, "confidence": 1.0}, "entities": entities or [], "text": ""}
    events = [{"event": "user", "text": "", "parse_data": latest, "input_channel": channel}]
    return Tracker(CUSTOMER, {}, latest, events, False, None, {}, "action_listen")


def test_the_catalog_on_whatsapp_is_the_product_list_naming_what_it_lacks() -> None:
    (message,), _ = run_action(ActionShowCatalog(), asked("browse_catalog", "whatsapp"))

    request = message["custom"]["catalog_products"]
    assert request["kind"] == "product_list"
    assert [s["title"] for s in request["sections"]] == [
        "Coffee",
        "Tea",
        "Brewing gear",
        "Gift cards",
    ]
    assert "Coffee Club Monthly — €14.90 / month" in request["body"]  # not in the Meta catalog
    assert request["fallback"].startswith("Here's what we have:")


def test_the_catalog_elsewhere_or_without_a_catalog_id_stays_the_text_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (on_rest,), _ = run_action(ActionShowCatalog(), asked("browse_catalog", "rest"))
    monkeypatch.delenv("WHATSAPP_CATALOG_ID")
    action_settings.cache_clear()
    (without,), _ = run_action(ActionShowCatalog(), asked("browse_catalog", "whatsapp"))

    for message in (on_rest, without):
        assert message["text"].startswith("Here's what we have:") and message["buttons"]


def test_a_product_question_on_whatsapp_is_its_product_message_and_yes_still_orders() -> None:
    product = [{"entity": "product", "value": "decaf"}]

    (message,), events = run_action(
        ActionAnswerProduct(), asked("ask_product", "whatsapp", product)
    )

    request = message["custom"]["catalog_products"]
    assert (request["kind"], request["retailer_id"]) == ("product", "BL-DEC-250")
    assert request["body"].startswith("Decaf Beans: €13.90.")
    assert "say yes and I'll start an order" in request["body"]
    assert slot_updates(events) == {"product": "decaf-beans"}


def test_a_question_about_a_product_outside_the_meta_catalog_is_answered_in_text() -> None:
    product = [{"entity": "product", "value": "coffee club"}]

    (message,), _ = run_action(ActionAnswerProduct(), asked("ask_product", "whatsapp", product))

    assert message["text"].startswith("Coffee Club Monthly") and message["buttons"]
