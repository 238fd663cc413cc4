from __future__ import annotations

import re

import pytest

from actions.catalog import Catalog
from actions.orders import (
    ALLOWED_MOVES,
    PAST_ORDERS_KEPT,
    InvalidOrderMove,
    Order,
    OrderStatus,
    cleared_order_slots,
    format_amount,
    new_order_id,
    with_past_order,
)
from actions.payments import MIN_LINK_LIFETIME_SECONDS, usable_attempt


def test_order_totals_come_from_catalog_prices(catalog: Catalog) -> None:
    order = Order.start(catalog, {"espresso-beans": 2, "green-tea": 1})
    assert order.status is OrderStatus.DRAFT
    assert order.total == 2 * 1290 + 890
    assert order.currency == "eur"
    assert order.summary(catalog).splitlines() == [
        "2 × Espresso Beans — €25.80",
        "1 × Sencha Green Tea — €8.90",
        "Total: €34.70",
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({}, "at least one product"),
        ({"a-pony": 1}, "unknown product 'a-pony'"),
        ({"espresso-beans": 0}, "between 1 and 10"),
        ({"espresso-beans": 11}, "between 1 and 10"),
        ({"coffee-club": 2}, "between 1 and 1"),
    ],
)
def test_invalid_items_are_refused(catalog: Catalog, items: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Order.start(catalog, items)


def test_order_ids_are_short_readable_and_unique() -> None:
    ids = {new_order_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"ORD-[A-HJ-NP-Z2-9]{8}", i) for i in ids)


def test_slots_round_trip(catalog: Catalog) -> None:
    order = Order.start(
        catalog,
        {"pour-over-kit": 1},
        flow_token="tok",
        delivery={"name": "N", "street": "S", "postal_code": "P", "city": "C"},
    ).moved_to(OrderStatus.AWAITING_PAYMENT, checkout_session_id="cs_1", payment_link="https://x")
    slots = order.to_slots()
    assert slots["order_status"] == "awaiting_payment"
    assert slots["order_total"] == 3400
    assert Order.from_slots(slots) == order
    assert Order.from_slots(cleared_order_slots()) is None


def test_payment_can_never_be_undone_by_a_late_event(catalog: Catalog) -> None:
    paid = Order.start(catalog, {"espresso-beans": 1}).moved_to(OrderStatus.PAID)
    for late in (
        OrderStatus.EXPIRED,
        OrderStatus.PAYMENT_FAILED,
        OrderStatus.CANCELLED,
        OrderStatus.AWAITING_PAYMENT,
        OrderStatus.DRAFT,
    ):
        assert not paid.can_move_to(late)
        with pytest.raises(InvalidOrderMove, match=f"cannot move from paid to {late.value}"):
            paid.moved_to(late)
    assert paid.moved_to(OrderStatus.REFUNDED).status is OrderStatus.REFUNDED


def test_money_taken_confirms_any_unpaid_order() -> None:
    for status, moves in ALLOWED_MOVES.items():
        if status not in (OrderStatus.PAID, OrderStatus.REFUNDED):
            assert OrderStatus.PAID in moves, status
    assert ALLOWED_MOVES[OrderStatus.REFUNDED] == frozenset()


def test_open_orders(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1})
    assert order.is_open
    assert order.moved_to(OrderStatus.AWAITING_PAYMENT).moved_to(OrderStatus.EXPIRED).is_open
    assert not order.can_move_to(OrderStatus.EXPIRED)  # a draft has no link to expire
    assert not order.moved_to(OrderStatus.CANCELLED).is_open
    assert not order.moved_to(OrderStatus.PAID).is_open


def test_past_orders_replace_older_records_and_stay_bounded(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1})
    past = with_past_order(None, order)
    past = with_past_order(past, order.moved_to(OrderStatus.PAID))
    assert [p["status"] for p in past] == ["paid"]
    for _ in range(PAST_ORDERS_KEPT + 5):
        past = with_past_order(past, Order.start(catalog, {"gift-card": 1}))
    assert len(past) == PAST_ORDERS_KEPT


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1290, "eur", "€12.90"),
        (5, "usd", "$0.05"),
        (123456, "gbp", "£1,234.56"),
        (1500, "chf", "15.00 CHF"),
        (500, "jpy", "500 JPY"),
    ],
)
def test_format_amount(amount: int, currency: str, text: str) -> None:
    assert format_amount(amount, currency) == text


def test_a_stale_attempt_becomes_the_next_one(catalog: Catalog) -> None:
    order = Order.start(catalog, {"gift-card": 1})
    assert usable_attempt(order, now=order.attempt_at + 60) is order
    late = order.attempt_at + 60 * 60 - MIN_LINK_LIFETIME_SECONDS + 1  # default expiry: 60 min
    renewed = usable_attempt(order, now=late)
    assert (renewed.attempt, renewed.attempt_at) == (2, late)
    assert renewed.id == order.id and renewed.lines == order.lines
