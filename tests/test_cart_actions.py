"""Typed orders with several products and quantities, changed while they are drafts, within
the catalog's limits: the actions run on trackers whose latest message carries the entities
the NLU data finds in the text."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Action, Tracker

from actions.cart_actions import ActionAddToOrder, ActionChangeOrder, ActionRemoveFromOrder
from actions.order_actions import ActionStartOrder
from actions.orders.model import Order
from actions.orders.states import OrderStatus
from shop_contract.catalog import Catalog
from tests.conftest import CUSTOMER, run_action, slot_updates
from tests.support.nlu_entities import entities


def said(text: str, intent: str, slots: dict[str, Any] | None = None) -> Tracker:
    latest = {
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities(text),
        "text": text,
    }
    events = [{"event": "user", "text": text, "parse_data": latest, "input_channel": "rest"}]
    return Tracker(CUSTOMER, dict(slots or {}), latest, events, False, None, {}, "action_listen")


def turn(
    action: Action, text: str, intent: str, order: Order | None = None
) -> tuple[str, Order | None]:
    """The action's answer to `text` (with `order` as the current one) and the order after."""
    slots = order.to_slots() if order else {}
    messages, events = run_action(action, said(text, intent, slots))
    updates = slot_updates(events)
    after = Order.from_slots({**slots, **updates})
    return "\n".join(m.get("text") or "" for m in messages), after


def lines(order: Order | None) -> list[tuple[str, int]]:
    assert order is not None
    return [(line.product_id, line.quantity) for line in order.lines]


def test_two_products_with_quantities_make_one_draft_showing_every_line() -> None:
    text, order = turn(ActionStartOrder(), "one espresso and two filter coffee", "order")
    assert lines(order) == [("espresso-beans", 1), ("filter-coffee", 2)]
    assert order is not None and order.status == OrderStatus.DRAFT
    assert (
        "1 × Espresso Beans — €12.90\n2 × Filter Coffee — €23.00\n"
        "Delivery to Germany — €4.90\nTotal: €40.80"
    ) in text
    assert "Shall I send you the payment link?" in text


def test_a_country_in_the_order_prices_its_delivery() -> None:
    text, order = turn(ActionStartOrder(), "3x green tea, 1 gift card to austria", "order")
    assert lines(order) == [("green-tea", 3), ("gift-card", 1)]
    assert order is not None and (order.destination, order.shipping) == ("Austria", 790)
    assert "Delivery to Austria — €7.90" in text


def test_add_remove_and_make_it_n_change_the_draft() -> None:
    _, order = turn(ActionStartOrder(), "2 bags of decaf", "order")
    text, order = turn(
        ActionAddToOrder(), "add one more decaf and a green tee", "add_to_order", order
    )
    assert lines(order) == [("decaf-beans", 3), ("green-tea", 1)]
    assert "3 × Decaf Beans" in text and "1 × Sencha Green Tea" in text
    _, order = turn(ActionChangeOrder(), "change the decaf to 2", "change_order", order)
    assert lines(order) == [("decaf-beans", 2), ("green-tea", 1)]
    _, order = turn(ActionRemoveFromOrder(), "remove the tea", "remove_from_order", order)
    assert lines(order) == [("decaf-beans", 2)]
    text, order = turn(ActionChangeOrder(), "make it three", "change_order", order)
    assert lines(order) == [("decaf-beans", 3)]
    assert "Delivery to Germany — free\nTotal: €41.70" in text  # free from €40


def test_crossing_the_free_delivery_threshold_reprices_delivery() -> None:
    _, order = turn(ActionStartOrder(), "2 espresso", "order")
    assert order is not None and order.shipping == 490
    text, order = turn(ActionAddToOrder(), "add 2 decaf", "add_to_order", order)
    assert order is not None and (order.shipping, order.total) == (0, 2 * 1290 + 2 * 1390)
    assert "Delivery to Germany — free" in text
    _, order = turn(ActionChangeOrder(), "deliver it to france instead", "change_order", order)
    assert order is not None and (order.destination, order.shipping) == ("France", 990)


def test_make_it_n_with_several_lines_asks_which() -> None:
    _, order = turn(ActionStartOrder(), "espresso and decaf", "order")
    text, after = turn(ActionChangeOrder(), "make it three", "change_order", order)
    assert "Which product should be 3?" in text
    assert lines(after) == lines(order)


def test_removing_the_last_line_cancels_the_draft() -> None:
    _, order = turn(ActionStartOrder(), "a gift card", "order")
    assert order is not None
    messages, events = run_action(
        ActionRemoveFromOrder(), said("remove the gift card", "remove_from_order", order.to_slots())
    )
    updates = slot_updates(events)
    assert updates["order_id"] is None
    assert updates["orders"][order.id]["order_status"] == "cancelled"
    assert f"order {order.id} is cancelled" in messages[0]["text"]


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("12 espresso", "You can order at most 10 × Espresso Beans at a time."),
        ("a dozen bags of decaf", "You can order at most 10 × Decaf Beans at a time."),
        ("4 pour over kits", "You can order at most 3 × Pour-Over Kit at a time."),
        (
            "espresso, decaf, filter coffee, green tea, pour over kit and a gift card",
            "An order can hold up to 5 different products.",
        ),
        (
            "coffee club and 2 espresso",
            "Coffee Club Monthly is a subscription and is paid on its own",
        ),
        ("2 espresso to japan", "Sorry, we don't deliver to japan."),
    ],
)
def test_limits_are_refused_with_a_clear_message(text: str, refusal: str, catalog: Catalog) -> None:
    assert catalog.max_lines == 5
    answer, order = turn(ActionStartOrder(), text, "order")
    assert refusal in answer
    assert order is None


def test_adding_over_a_limit_keeps_the_draft_as_it_was() -> None:
    _, order = turn(ActionStartOrder(), "9 espresso", "order")
    text, after = turn(ActionAddToOrder(), "add 2 espresso", "add_to_order", order)
    assert text == "You can order at most 10 × Espresso Beans at a time."
    assert after == order


def test_an_order_with_a_payment_link_is_not_changed(catalog: Catalog) -> None:
    _, order = turn(ActionStartOrder(), "2 espresso", "order")
    assert order is not None
    pending = order.with_link("cs_1", "https://pay.example/cs_1")
    text, after = turn(ActionAddToOrder(), "add a decaf", "add_to_order", pending)
    assert "already has its payment link" in text
    assert after == pending


def test_change_order_with_nothing_to_change_says_how() -> None:
    _, order = turn(ActionStartOrder(), "2 espresso", "order")
    text, after = turn(ActionChangeOrder(), "/change_order", "change_order", order)
    assert 'tell me e.g. "add 2 decaf"' in text
    assert after == order
